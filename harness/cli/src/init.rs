//! `gauntlet init DIR`: writes a new crate that tests a system of its own — an example
//! application with a planted bug (Tally, a replicated counter), a plan, a test that sweeps it
//! with `TestRun`, the crate's own command line, and the `.cargo/config.toml` that selects the
//! simulation build. `cargo test` passes in it at once. The files are `harness/cli/template/`.

use crate::{EXIT_PASS, EXIT_USAGE};
use std::path::{Path, PathBuf};

/// The template's files: (path in the new crate, contents with placeholders).
const FILES: [(&str, &str); 7] = [
    ("Cargo.toml", include_str!("../template/Cargo.toml.tmpl")),
    (".cargo/config.toml", include_str!("../template/cargo/config.toml")),
    ("src/lib.rs", include_str!("../template/src/lib.rs")),
    ("src/bin/gauntlet.rs", include_str!("../template/src/bin/gauntlet.rs")),
    ("plans/tally.toml", include_str!("../template/plans/tally.toml")),
    ("tests/tally.rs", include_str!("../template/tests/tally.rs")),
    ("README.md", include_str!("../template/README.md")),
];

const GITIGNORE: &str = "/target\n/gauntlet-out\n";

/// The Gauntlet checkout this program was built from, if it is still there.
fn own_checkout() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.join("harness/Cargo.toml").exists().then(|| root.canonicalize().ok()).flatten()
}

/// The dependency lines for `gauntlet` and `gauntlet-cli`, from `--gauntlet`.
fn dependencies(source: Option<&str>) -> Result<(String, String, Option<PathBuf>), String> {
    let path = |root: &Path| {
        let q = |p: PathBuf| format!("{{ path = {:?} }}", p.display().to_string());
        (q(root.join("harness")), q(root.join("harness/cli")), Some(root.to_path_buf()))
    };
    match source {
        None => own_checkout().map(|r| path(&r)).ok_or_else(|| {
            "the Gauntlet checkout this program was built from is gone; say where Gauntlet is with \
             --gauntlet path:DIR or --gauntlet git:URL"
                .to_owned()
        }),
        Some(s) => match s.split_once(':') {
            Some(("path", dir)) => {
                let root = PathBuf::from(dir);
                if !root.join("harness/Cargo.toml").exists() {
                    return Err(format!("--gauntlet {s:?}: {dir} is not a Gauntlet checkout (no harness/Cargo.toml)"));
                }
                Ok(path(&root.canonicalize().map_err(|e| format!("--gauntlet {s:?}: {e}"))?))
            }
            Some(("git", url)) if !url.is_empty() => {
                let q = format!("{{ git = {url:?} }}");
                Ok((q.clone(), q, None))
            }
            _ => Err(format!("--gauntlet {s:?}: expected path:DIR or git:URL")),
        },
    }
}

/// Checks a cargo package name: ASCII letters, digits, `-` and `_`, not starting with a digit.
fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a crate name: use ASCII letters, digits, - and _, not starting with a digit (pass --name)"
        ))
    }
}

/// Writes the crate into `dir` (through `<dir>.init-tmp`, renamed when complete); returns the
/// crate's name and the files written.
pub fn write(dir: &Path, name: Option<&str>, gauntlet: Option<&str>) -> Result<(String, Vec<PathBuf>), String> {
    let name = match name {
        Some(n) => n.to_owned(),
        None => dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| format!("{}: no directory name to name the crate after; pass --name", dir.display()))?,
    };
    check_name(&name)?;
    if dir.exists() && std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?.next().is_some() {
        return Err(format!("{} exists and is not empty; init writes a new crate into a new directory", dir.display()));
    }
    let (dep, cli_dep, checkout) = dependencies(gauntlet)?;
    let ident = name.replace('-', "_");
    let fill = |text: &str| {
        text.replace("__GAUNTLET_DEP__", &dep)
            .replace("__GAUNTLET_CLI_DEP__", &cli_dep)
            .replace("__CRATE_IDENT__", &ident)
            .replace("__CRATE__", &name)
    };
    let tmp = dir.with_file_name(format!(
        ".{}.init-tmp",
        dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    ));
    let _ = std::fs::remove_dir_all(&tmp);
    let mut written = Vec::new();
    let put = |rel: &str, bytes: &[u8]| -> Result<(), String> {
        let path = tmp.join(rel);
        std::fs::create_dir_all(path.parent().expect("a file in the crate"))
            .and_then(|()| std::fs::write(&path, bytes))
            .map_err(|e| format!("{}: {e}", path.display()))
    };
    for (rel, text) in FILES {
        put(rel, fill(text).as_bytes())?;
        written.push(dir.join(rel));
    }
    put(".gitignore", GITIGNORE.as_bytes())?;
    // The checkout's lock file pins every dependency to the versions Gauntlet is tested with.
    if let Some(lock) = checkout.map(|c| c.join("Cargo.lock")).filter(|l| l.exists()) {
        let bytes = std::fs::read(&lock).map_err(|e| format!("{}: {e}", lock.display()))?;
        put("Cargo.lock", &bytes)?;
        written.push(dir.join("Cargo.lock"));
    }
    if dir.exists() {
        std::fs::remove_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::rename(&tmp, dir).map_err(|e| format!("{} -> {}: {e}", tmp.display(), dir.display()))?;
    Ok((name, written))
}

/// `gauntlet init DIR [--name NAME] [--gauntlet path:DIR|git:URL]`.
pub fn run(dir: &Path, name: Option<&str>, gauntlet: Option<&str>) -> i32 {
    match write(dir, name, gauntlet) {
        Ok((name, files)) => {
            for f in &files {
                println!("wrote {}", f.display());
            }
            let bin = format!("{name}-gauntlet");
            println!("\nnext:\n  cd {}\n  cargo test\n  cargo run --bin {bin} -- sweep plans/tally.toml --seeds 0..50 --bug ack-before-sync --first", dir.display());
            EXIT_PASS
        }
        Err(e) => {
            eprintln!("gauntlet init: {e}");
            EXIT_USAGE
        }
    }
}
