//! Writes the CRD YAML: `crdgen` prints it; `crdgen --write` updates the committed file;
//! `crdgen --check` fails if the committed file is stale.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let yaml = match ferrolb_crds::manifest::yaml() {
        Ok(y) => y,
        Err(e) => {
            eprintln!("crdgen: cannot serialise CRDs: {e}");
            return ExitCode::FAILURE;
        }
    };
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(ferrolb_crds::manifest::CRDS_YAML_PATH);
    match std::env::args().nth(1).as_deref() {
        None => print!("{yaml}"),
        Some("--write") => {
            if let Err(e) = std::fs::write(&path, yaml) {
                eprintln!("crdgen: cannot write {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        }
        Some("--check") => {
            if std::fs::read_to_string(&path).ok().as_deref() != Some(yaml.as_str()) {
                eprintln!(
                    "crdgen: {} is stale: run `cargo run -p ferrolb-crds --bin crdgen -- --write`",
                    path.display()
                );
                return ExitCode::FAILURE;
            }
        }
        Some(other) => {
            eprintln!("crdgen: unknown argument {other}; use --write or --check");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
