//! The module tree of a model before latencies are assigned: [`Module`]s (leaves, containers
//! and ramp sites), the [`Builder`] of the torch leaf modules the architectures use, and the
//! latency [`weight`]s of leaf module types.

/// Latency weights of leaf module types (share of the vanilla time between two sites).
pub(super) mod weight {
    pub const CONV: f64 = 8.0;
    pub const LINEAR: f64 = 6.0;
    pub const EMBEDDING: f64 = 2.0;
    pub const NORM: f64 = 1.0;
    pub const ACTIVATION: f64 = 0.7;
    pub const POOL: f64 = 1.0;
    /// Dropout, Flatten: no measurable time (the int `0`).
    pub const NONE: f64 = 0.0;
}

/// One module of the model, before latencies are assigned.
#[derive(Clone, Debug)]
pub(super) struct Module {
    pub(super) name: String,
    pub(super) ty: String,
    pub(super) params: i64,
    pub(super) macs: i64,
    pub(super) input_shape: Option<Vec<i64>>,
    pub(super) output_shape: Option<Vec<i64>>,
    pub(super) body: Body,
}

#[derive(Clone, Debug)]
pub(super) enum Body {
    /// A leaf of the vanilla path in segment `seg` (0: before the first site, `r + 1`: up to
    /// site `r`, `R + 1`: after the last site).
    Leaf { seg: usize, weight: f64 },
    /// A container of child modules.
    Container(Vec<Module>),
    /// Ramp site `r`: the vanilla module where the ramp attaches and the ramp itself.
    Site {
        r: usize,
        module: Box<Module>,
        ramp: Box<Module>,
    },
}

/// Builds modules; `seg` is the segment new leaves go to.
pub(super) struct Builder {
    pub(super) bs: i64,
    pub(super) seg: usize,
}

pub(super) fn shape(dims: &[i64]) -> Option<Vec<i64>> {
    Some(dims.to_vec())
}

impl Builder {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn leaf(
        &self,
        name: &str,
        ty: &str,
        weight: f64,
        params: i64,
        macs: i64,
        input_shape: Option<Vec<i64>>,
        output_shape: Option<Vec<i64>>,
    ) -> Module {
        Module {
            name: name.into(),
            ty: ty.into(),
            params,
            macs,
            input_shape,
            output_shape,
            body: Body::Leaf {
                seg: self.seg,
                weight,
            },
        }
    }

    pub(super) fn conv2d(
        &self,
        name: &str,
        cin: i64,
        cout: i64,
        k: i64,
        hw: i64,
        bias: bool,
    ) -> Module {
        let params = cin * cout * k * k + if bias { cout } else { 0 };
        let macs = self.bs * cin * cout * k * k * hw * hw;
        let s = shape(&[self.bs, cout, hw, hw]);
        self.leaf(name, "Conv2d", weight::CONV, params, macs, s.clone(), s)
    }

    pub(super) fn batch_norm(&self, name: &str, c: i64, hw: i64) -> Module {
        let s = shape(&[self.bs, c, hw, hw]);
        let macs = self.bs * c * hw * hw;
        self.leaf(name, "BatchNorm2d", weight::NORM, 2 * c, macs, s.clone(), s)
    }

    /// An element-wise module (ReLU, GELU, Tanh, Dropout, ...) on `dims`.
    pub(super) fn elementwise(&self, name: &str, ty: &str, weight: f64, dims: &[i64]) -> Module {
        let s = shape(dims);
        self.leaf(name, ty, weight, 0, 0, s.clone(), s)
    }

    pub(super) fn relu(&self, name: &str, c: i64, hw: i64) -> Module {
        self.elementwise(name, "ReLU", weight::ACTIVATION, &[self.bs, c, hw, hw])
    }

    pub(super) fn pool(&self, name: &str, ty: &str, c: i64, hw: i64) -> Module {
        self.elementwise(name, ty, weight::POOL, &[self.bs, c, hw, hw])
    }

    pub(super) fn dropout(&self, name: &str, dims: &[i64]) -> Module {
        self.elementwise(name, "Dropout", weight::NONE, dims)
    }

    /// A linear layer on `lead` leading dimensions (e.g. `[bs]` or `[bs, seq]`).
    pub(super) fn linear(
        &self,
        name: &str,
        ty: &str,
        lead: &[i64],
        fin: i64,
        fout: i64,
        bias: bool,
    ) -> Module {
        let params = fin * fout + if bias { fout } else { 0 };
        let rows: i64 = lead.iter().product();
        let mut out = lead.to_vec();
        out.push(fout);
        let mut inp = lead.to_vec();
        inp.push(fin);
        self.leaf(
            name,
            ty,
            weight::LINEAR,
            params,
            rows * fin * fout,
            Some(inp),
            Some(out),
        )
    }

    pub(super) fn layer_norm(&self, name: &str, lead: &[i64], d: i64) -> Module {
        let mut s = lead.to_vec();
        s.push(d);
        let rows: i64 = lead.iter().product();
        self.leaf(
            name,
            "LayerNorm",
            weight::NORM,
            2 * d,
            rows * d,
            Some(s.clone()),
            Some(s),
        )
    }

    pub(super) fn embedding(&self, name: &str, lead: &[i64], n: i64, d: i64) -> Module {
        let mut s = lead.to_vec();
        s.push(d);
        let rows: i64 = lead.iter().product();
        self.leaf(
            name,
            "Embedding",
            weight::EMBEDDING,
            n * d,
            rows * d,
            Some(s.clone()),
            Some(s),
        )
    }
}

pub(super) fn container(name: &str, ty: &str, children: Vec<Module>) -> Module {
    Module {
        name: name.into(),
        ty: ty.into(),
        params: children.iter().map(|c| c.params).sum(),
        macs: children.iter().map(|c| c.macs).sum(),
        input_shape: None,
        output_shape: None,
        body: Body::Container(children),
    }
}

pub(super) fn site(r: usize, module: Module, ramp: Module) -> Module {
    Module {
        name: module.name.clone(),
        ty: module.ty.clone(),
        params: module.params,
        macs: module.macs,
        input_shape: None,
        output_shape: None,
        body: Body::Site {
            r,
            module: Box::new(module),
            ramp: Box::new(ramp),
        },
    }
}
