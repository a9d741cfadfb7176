//! `ee-backend gen-data`: train-ramps + infer + profile into one artifact-format folder.

use std::path::PathBuf;

use anyhow::{Context, Result};
use backend::device::select;
use backend::gendata::{
    copy_profiles, prepare_out_dir, write_decisions, write_readme, Names, Provenance,
};
use backend::infer::{agreement, argmax_rows, split};
use backend::models::StagedModel;
use backend::profile::{profile, ProfileOptions};
use backend::weights;
use burn::tensor::backend::Backend;

use crate::args::{invocation, ModelArgs, NameArgs, RampTrainArgs, SplitArgs};
use crate::infer_cmd::{outputs, write_pickles};
use crate::train_cmd::trained_ramps;

#[derive(clap::Args, Debug)]
pub struct GenDataArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub split: SplitArgs,
    #[command(flatten)]
    pub train: RampTrainArgs,
    #[command(flatten)]
    pub names: NameArgs,
    /// True labels, one per sample (recorded in the README with the final model's accuracy).
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// The data folder to write (created; refused when it holds files, unless --overwrite).
    #[arg(long)]
    pub out: PathBuf,
    /// Replace files of the same names in a folder that holds files.
    #[arg(long)]
    pub overwrite: bool,
    /// Batch sizes to profile.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8,16,32,64")]
    pub batch_sizes: Vec<usize>,
    /// Untimed runs per batch size.
    #[arg(long, default_value_t = 10)]
    pub warmup: usize,
    /// Timed runs per batch size.
    #[arg(long, default_value_t = 30)]
    pub reps: usize,
    /// Tokens per sample (NLP).
    #[arg(long, default_value_t = 128)]
    pub seq_len: usize,
    /// Take the profiles from this profile_pickles_bs/ folder instead of measuring them (they
    /// must be of --name with as many ramps as the model has sites).
    #[arg(long)]
    pub profile_from: Option<PathBuf>,
}

pub fn gen_data_cmd(a: GenDataArgs) -> Result<()> {
    // Names first: a refusal costs nothing and prints one line.
    let family = backend::models::registry::info(&a.model.model)?.family;
    let names = Names::new(
        a.names.name.as_deref().unwrap_or(&a.model.model),
        a.names.dataset.as_deref(),
        family,
    )?;
    let selected = select(a.model.device)?;
    let words = format!("{} ({})", selected.describe(), selected.why());
    tracing::info!("device: {words}");
    backend::with_backend!(&selected, B, dev, {
        gen_data_on::<B>(&a, names.clone(), &selected, words.clone(), &dev)
    })
}

/// Everything on the selected backend: ramp training, inference and the profile.
fn gen_data_on<B: Backend>(
    a: &GenDataArgs,
    names: Names,
    selected: &backend::device::Selected,
    words: String,
    dev: &B::Device,
) -> Result<()> {
    let dev = dev.clone();
    let command = invocation();
    prepare_out_dir(&a.out, a.overwrite)?;

    let crate::train_cmd::Trained {
        model,
        samples,
        ramps,
        reports,
    } = trained_ramps::<B>(&a.model, &a.split, &a.train, &dev)?;
    let sp = split(
        samples.len(),
        a.split.bootstrap_fraction,
        a.split.train_share,
    )
    .with_context(|| format!("{}", a.model.data.display()))?;
    let mut files = Vec::new();
    let ramps_file = a.out.join("ramps.safetensors");
    weights::save(&ramps, &ramps_file)?;
    files.push(ramps_file.clone());

    let o = outputs(&model, &ramps, &samples, a.train.batch, &dev)?;
    files.extend(write_pickles(&a.out, &names, &o, &sp)?);

    let opts = ProfileOptions {
        batch_sizes: a.batch_sizes.clone(),
        warmup: a.warmup,
        reps: a.reps,
        seq_len: a.seq_len,
    };
    let (tables, profile_source) = match &a.profile_from {
        Some(from) => {
            let (written, tables) = copy_profiles(from, &a.out, &names, model.num_sites())?;
            files.extend(written);
            (
                tables,
                format!(
                    "copied from `{}` (--profile-from), not measured",
                    from.display()
                ),
            )
        }
        None => {
            // Timed on the selected device with the heads just trained.
            let mut p = profile(&model, &ramps, &opts, &dev)?;
            if let Some(record) = p.record.as_object_mut() {
                record.insert(
                    "device".into(),
                    backend::device::device_record(selected).into(),
                );
            }
            let written = apparate::artifact::write::write_profiles(
                &a.out.join("profile_pickles_bs"),
                &names.name,
                &p.tables,
            )?;
            files.extend(written);
            let record = a.out.join("profile.json");
            let text = serde_json::to_string_pretty(&p.record)?;
            apparate::safe_write::write_bytes(
                &record,
                apparate::safe_write::Durability::Sync,
                text.as_bytes(),
            )
            .with_context(|| format!("{}", record.display()))?;
            files.push(record);
            (
                p.tables,
                format!(
                    "measured on {} ({} warm-up and {} timed runs per batch size, median kept; see profile.json)",
                    selected.describe(),
                    a.warmup,
                    a.reps
                ),
            )
        }
    };
    files.push(write_decisions(
        &a.out,
        &names,
        &tables,
        sp.simulation.len(),
        a.train.seed,
    )?);

    let mut notes = vec![
        format!(
            "{} samples: bootstrap {:?} (ramps trained on {:?}, validated on {:?}), simulation {:?}",
            samples.len(),
            sp.bootstrap,
            sp.train,
            sp.validation,
            sp.simulation
        ),
        format!(
            "ramp training: seed {}, {} epochs, AdamW lr {}, batch {}",
            a.train.seed, a.train.epochs, a.train.lr, a.train.batch
        ),
    ];
    for r in &reports {
        notes.push(format!(
            "ramp {}: validation agreement with the final model {:.4}",
            r.site, r.validation_agreement
        ));
    }
    let mut inputs = vec![("data".to_string(), a.model.data.clone())];
    if let Some(w) = &a.model.weights {
        inputs.insert(0, ("weights".to_string(), w.clone()));
    }
    if let Some(l) = &a.labels {
        let labels = backend::data::read_labels(l, samples.len(), model.num_classes())?;
        let acc = agreement(&argmax_rows(&o.final_logits, o.classes), &labels);
        notes.push(format!("final model accuracy on the labels: {acc:.4}"));
        println!("final model accuracy on the labels: {acc:.4}");
        inputs.push(("labels".to_string(), l.clone()));
    }
    let p = Provenance {
        command,
        model: a.model.model.clone(),
        names,
        device: words,
        profile_source,
        inputs,
        notes,
    };
    let readme = write_readme(&a.out, &p, &files)?;
    println!("wrote {} files and {}", files.len(), readme.display());
    Ok(())
}
