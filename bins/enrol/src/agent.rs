//! `enrol agent …`: the device agent. One provisioning profile per
//! application security stack; the state machine, the stores and the
//! protocol flows are in `enrolkit-client::agent`.

use clap::{Args, Subcommand};
use enrolkit_client::agent::{self, Driver, Outcome, Profile};
use rand_core::RngCore;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `enrol agent`: run the agent, or inspect and direct it.
#[derive(Args)]
pub struct AgentArgs {
    /// A provisioning profile (TOML; repeatable, one per application security stack).
    #[arg(long = "profile", global = true)]
    profiles: Vec<PathBuf>,
    /// Where each profile keeps its state (a directory per profile, 0700).
    #[arg(
        long,
        global = true,
        env = "ENROL_STATE_DIR",
        default_value = "/var/lib/enrolkit/agent"
    )]
    state_dir: PathBuf,
    /// Run one cycle per profile and exit: 0 nothing to do, 10 a new
    /// credential installed, 20 failed with a valid credential in place,
    /// 30 failed without one, 40 halted on a trust or profile error.
    #[arg(long)]
    once: bool,
    #[command(subcommand)]
    cmd: Option<AgentCmd>,
}

#[derive(Subcommand)]
enum AgentCmd {
    /// Print each profile's state, certificate expiry, next renewal and last error.
    Status,
    /// Check the profiles and exit (the field and the reason for each error).
    Check,
    /// Direct the agent to renew now (step 6); a running daemon picks it up within a second.
    Renew,
}

fn seed() -> [u8; 32] {
    let mut s = [0u8; 32];
    rand_core::OsRng.fill_bytes(&mut s);
    s
}

fn load_all(paths: &[PathBuf]) -> Result<Vec<Profile>, String> {
    let profiles = paths
        .iter()
        .map(|p| {
            let profile = Profile::load(p)?;
            profile.check_host(&p.display().to_string())?;
            Ok(profile)
        })
        .collect::<Result<Vec<_>, agent::ProfileError>>()
        .map_err(|e| e.to_string())?;
    for (i, p) in profiles.iter().enumerate() {
        for q in profiles.iter().skip(i + 1) {
            if q.name == p.name {
                return Err(format!("two profiles are named {:?}; each needs its own name", p.name));
            }
            // Two stacks writing one file would replace each other's credential.
            if let Some(f) = p.written_paths().into_iter().find(|f| q.written_paths().contains(f)) {
                return Err(format!(
                    "profiles {:?} and {:?} both write {}; each application stack needs its own files",
                    p.name,
                    q.name,
                    f.display()
                ));
            }
        }
    }
    Ok(profiles)
}

fn status(profile: &Profile, state_dir: &Path) -> String {
    let path = state_dir.join(&profile.name).join("status.toml");
    let table = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| t.parse::<toml::Table>().ok());
    let Some(t) = table else {
        return format!("{}: never run (no {})\n", profile.name, path.display());
    };
    let get = |k: &str| {
        t.get(k)
            .map(|v| v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string()))
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "-".into())
    };
    format!(
        "{}: {}\n  certificate expires: {}\n  next renewal:        {}\n  next wake:           {}\n  failures:            {}\n  last error:          {}\n  updated:             {}\n",
        profile.name,
        get("phase"),
        get("not_after"),
        get("renew_at"),
        get("next_wake"),
        get("failures"),
        get("last_error"),
        get("updated"),
    )
}

/// Run `enrol agent`.
pub fn run(args: AgentArgs) -> ExitCode {
    if args.profiles.is_empty() {
        eprintln!("enrol agent: give at least one --profile");
        return ExitCode::from(2);
    }
    let profiles = match load_all(&args.profiles) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("enrol agent: {e}");
            return ExitCode::from(2);
        }
    };
    match args.cmd {
        Some(AgentCmd::Check) => {
            for p in &profiles {
                println!(
                    "{}: ok ({:?}, {}, generation {})",
                    p.name,
                    p.protocol,
                    p.url,
                    p.generation()
                );
            }
            return ExitCode::SUCCESS;
        }
        Some(AgentCmd::Status) => {
            for p in &profiles {
                print!("{}", status(p, &args.state_dir));
            }
            return ExitCode::SUCCESS;
        }
        Some(AgentCmd::Renew) => {
            for p in &profiles {
                let dir = args.state_dir.join(&p.name);
                let r = enrolkit_files::create_private_dir(&dir)
                    .and_then(|()| enrolkit_files::write_private(&dir.join("renew-now"), b"renew\n"));
                if let Err(e) = r {
                    eprintln!("enrol agent: {e}");
                    return ExitCode::FAILURE;
                }
                println!("{}: renewal requested", p.name);
            }
            return ExitCode::SUCCESS;
        }
        None => {}
    }
    let mut drivers = Vec::new();
    for p in profiles {
        match Driver::new(p, &args.state_dir) {
            Ok(d) => drivers.push(d),
            Err(e) => {
                eprintln!("enrol agent: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    if args.once {
        // The worst outcome decides the exit code.
        let mut worst = Outcome::Unchanged;
        for d in &mut drivers {
            let (outcome, st) = agent::run_once(d, seed());
            println!(
                "{}: {:?}{}",
                d.profile.name,
                outcome,
                st.last_error.map(|e| format!(" ({e})")).unwrap_or_default()
            );
            if outcome.code() > worst.code() {
                worst = outcome;
            }
        }
        return ExitCode::from(worst.code() as u8);
    }
    let stop = std::sync::atomic::AtomicBool::new(false);
    // What each profile's neighbours write, for its reloads to respect.
    let taken: Vec<Vec<PathBuf>> = (0..drivers.len())
        .map(|i| {
            drivers
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .flat_map(|(_, d)| d.profile.written_paths().into_iter().map(Path::to_path_buf))
                .collect()
        })
        .collect();
    std::thread::scope(|s| {
        for ((d, path), taken) in drivers.iter_mut().zip(args.profiles.iter()).zip(taken.iter()) {
            let stop = &stop;
            s.spawn(move || agent::run_daemon(d, path, taken, seed(), stop));
        }
    });
    ExitCode::SUCCESS
}
