//! `ee-backend models`: every model the backend builds, with its ramp sites.

use backend::models::{Family, MODELS};

/// Prints one line per model: name, family, ramp sites, what it is.
pub fn run() {
    println!("{:<12} {:<6} {:>5}  about", "model", "family", "sites");
    for m in MODELS {
        let family = match m.family {
            Family::Cv => "cv",
            Family::Nlp => "nlp",
        };
        println!("{:<12} {:<6} {:>5}  {}", m.name, family, m.sites, m.about);
    }
}
