//! Records the git commit being built as `ERIC_GIT_COMMIT` (for the
//! `eric_build_info` metric); `unknown` outside a git checkout or without
//! git (a source tarball, a Docker build without `.git`). `ERIC_GIT_COMMIT`
//! in the environment wins, for builds that know it but have no `.git`.

use std::process::Command;

fn main() {
    println!("cargo::rerun-if-env-changed=ERIC_GIT_COMMIT");
    let commit = std::env::var("ERIC_GIT_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_owned());
    // Rebuilt when HEAD moves: HEAD itself (a checkout) and the branch it
    // names (a commit). Worktrees have their own HEAD; `--git-path` finds it.
    for file in ["HEAD", "packed-refs"] {
        if let Some(path) = git(&["rev-parse", "--git-path", file]) {
            println!("cargo::rerun-if-changed={path}");
        }
    }
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"])
        && let Some(path) = git(&["rev-parse", "--git-path", &branch])
    {
        println!("cargo::rerun-if-changed={path}");
    }
    println!("cargo::rustc-env=ERIC_GIT_COMMIT={commit}");
}

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!text.is_empty()).then_some(text)
}
