//! Logging set-up: `tracing` to an append-only file, or to stderr — never stdout, which is the
//! protocol in `zeke nvim` and `zeke mcp`.
//!
//! The level comes from, first match wins: `--log-level`, then `$ZEKE_LOG` (a level name, or a
//! `tracing` filter such as `zeke=debug,reqwest=trace`), then the config's `log_level`, then the
//! surface's default (`info`; `warn` for the one-shot CLI commands, whose stderr a person reads).
//! When the config decided, a later config (the editor's `setup{}` arriving over `configure`)
//! changes the level of the running process ([`follow_config`]); a flag or `$ZEKE_LOG` pins it.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::reload;
use tracing_subscriber::util::SubscriberInitExt;

/// A log verbosity, as written in `log_level`, `--log-level` and `$ZEKE_LOG`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    /// Every level, least verbose first.
    pub const ALL: [LogLevel; 5] = [
        LogLevel::Error,
        LogLevel::Warn,
        LogLevel::Info,
        LogLevel::Debug,
        LogLevel::Trace,
    ];

    /// The lowercase name (`"debug"`).
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }

    /// Parses a lowercase or uppercase name; `None` for anything else.
    pub fn parse(s: &str) -> Option<LogLevel> {
        LogLevel::ALL
            .into_iter()
            .find(|l| l.as_str().eq_ignore_ascii_case(s.trim()))
    }

    /// The filter for this level: Zeke's own events at this level, its dependencies' at `warn`
    /// (or at this level when it is quieter than `warn`).
    fn filter(self) -> EnvFilter {
        let deps = self.min(LogLevel::Warn).as_str();
        EnvFilter::new(format!("{deps},zeke={}", self.as_str()))
    }
}

impl std::fmt::Display for LogLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which setting decided the level, reported in the log's first lines and by `zeke config`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LevelSource {
    /// `--log-level` on the command line.
    Flag,
    /// `$ZEKE_LOG`.
    Env,
    /// `log_level` in the config (file or editor).
    Config,
    /// Nothing was set.
    Default,
}

impl LevelSource {
    /// Where the level came from, for people (`"$ZEKE_LOG"`).
    pub fn describe(self) -> &'static str {
        match self {
            LevelSource::Flag => "--log-level",
            LevelSource::Env => "$ZEKE_LOG",
            LevelSource::Config => "the config's log_level",
            LevelSource::Default => "the default",
        }
    }
}

/// What the sources say, before the subscriber exists (pure, so it is tested without a global).
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    /// The filter directives in force (`"zeke=debug,warn"`).
    pub directives: String,
    pub source: LevelSource,
    /// A `$ZEKE_LOG` that was neither a level nor a filter, ignored (to be logged as a warning).
    pub rejected_env: Option<String>,
}

/// Picks the filter: `flag` > `env` (`$ZEKE_LOG`'s value) > `config` > `default`.
pub fn choose(
    flag: Option<LogLevel>,
    env: Option<&str>,
    config: Option<LogLevel>,
    default: LogLevel,
) -> Choice {
    let level_choice = |l: LogLevel, source, rejected_env| Choice {
        directives: l.filter().to_string(),
        source,
        rejected_env,
    };
    if let Some(l) = flag {
        return level_choice(l, LevelSource::Flag, None);
    }
    let mut rejected_env = None;
    if let Some(v) = env.map(str::trim).filter(|v| !v.is_empty()) {
        if let Some(l) = LogLevel::parse(v) {
            return level_choice(l, LevelSource::Env, None);
        }
        // A filter names targets with `=` or lists directives with `,`; a lone word that is not a
        // level is a typo (`ZEKE_LOG=verbose`), not a target called "verbose".
        let looks_like_filter = v.contains('=') || v.contains(',');
        match EnvFilter::try_new(v) {
            Ok(f) if looks_like_filter => {
                return Choice {
                    directives: f.to_string(),
                    source: LevelSource::Env,
                    rejected_env: None,
                };
            }
            _ => rejected_env = Some(v.to_string()),
        }
    }
    match config {
        Some(l) => level_choice(l, LevelSource::Config, rejected_env),
        None => level_choice(default, LevelSource::Default, rejected_env),
    }
}

/// The command line's `--log FILE` and `--log-level LEVEL` (global options of every command).
#[derive(Debug, Clone, Default)]
pub struct LogArgs {
    pub file: Option<PathBuf>,
    pub level: Option<LogLevel>,
}

impl LogArgs {
    /// [`init`] with these arguments.
    pub fn init(&self, config: Option<LogLevel>, default: LogLevel) -> anyhow::Result<Choice> {
        init(self.file.as_deref(), self.level, config, default)
    }
}

type Handle = reload::Handle<EnvFilter, tracing_subscriber::Registry>;

struct Installed {
    handle: Handle,
    /// Whether a later config may change the level (it decided, or nothing did).
    follows_config: bool,
    current: Mutex<String>,
}

static INSTALLED: OnceLock<Installed> = OnceLock::new();

/// Installs the global subscriber, writing to `file` (appended to, directories created) or
/// stderr. `flag` is `--log-level`, `config` the config's `log_level` (`None` when the config
/// could not be read), `default` the surface's level when nothing is set. Fails only when the log
/// file cannot be opened or a subscriber is already installed. Returns what was chosen.
pub fn init(
    file: Option<&Path>,
    flag: Option<LogLevel>,
    config: Option<LogLevel>,
    default: LogLevel,
) -> anyhow::Result<Choice> {
    let env = std::env::var("ZEKE_LOG").ok();
    let choice = choose(flag, env.as_deref(), config, default);
    let (filter, handle) = reload::Layer::new(EnvFilter::new(&choice.directives));
    let fmt = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_target(false);
    let registry = tracing_subscriber::registry().with(filter);
    let result = match file {
        Some(path) => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?;
            registry.with(fmt.with_writer(Mutex::new(f))).try_init()
        }
        None => registry.with(fmt.with_writer(std::io::stderr)).try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("cannot set up logging: {e}"))?;
    let follows_config = matches!(choice.source, LevelSource::Config | LevelSource::Default);
    let _ = INSTALLED.set(Installed {
        handle,
        follows_config,
        current: Mutex::new(choice.directives.clone()),
    });
    if let Some(bad) = &choice.rejected_env {
        tracing::warn!(
            "ZEKE_LOG={bad:?} is neither a level (error, warn, info, debug, trace) nor a filter such as \
             \"zeke=debug\"; ignored"
        );
    }
    tracing::debug!(filter = %choice.directives, "log level from {}", choice.source.describe());
    Ok(choice)
}

/// Applies a new config's `log_level` to the running process, unless `--log-level` or
/// `$ZEKE_LOG` pinned it. Returns whether the filter changed.
pub fn follow_config(level: LogLevel) -> bool {
    let Some(inst) = INSTALLED.get() else {
        return false;
    };
    if !inst.follows_config {
        return false;
    }
    let directives = level.filter().to_string();
    let mut current = inst.current.lock().unwrap_or_else(|e| e.into_inner());
    if *current == directives {
        return false;
    }
    match inst.handle.reload(EnvFilter::new(&directives)) {
        Ok(()) => {
            *current = directives;
            tracing::info!("log level now {level} (the config's log_level)");
            true
        }
        Err(e) => {
            tracing::warn!("cannot change the log level: {e}");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use LogLevel::*;

    fn pick(flag: Option<LogLevel>, env: Option<&str>, config: Option<LogLevel>) -> String {
        let c = choose(flag, env, config, Info);
        let rejected = c
            .rejected_env
            .map(|r| format!(" (ignored ZEKE_LOG={r})"))
            .unwrap_or_default();
        format!("{:?}: {}{rejected}", c.source, c.directives)
    }

    #[test]
    fn first_match_wins_flag_env_config_default() {
        let got = [
            pick(Some(Trace), Some("error"), Some(Debug)),
            pick(None, Some("debug"), Some(Error)),
            pick(None, Some("DEBUG"), None),
            pick(None, Some("zeke=trace,reqwest=debug"), Some(Error)),
            pick(None, Some("verbose"), Some(Debug)),
            pick(None, Some("zeke=[bad"), None),
            pick(None, Some("  "), Some(Error)),
            pick(None, None, Some(Warn)),
            pick(None, None, None),
        ]
        .join("\n");
        expect_test::expect![[r#"
            Flag: zeke=trace,warn
            Env: zeke=debug,warn
            Env: zeke=debug,warn
            Env: reqwest=debug,zeke=trace
            Config: zeke=debug,warn (ignored ZEKE_LOG=verbose)
            Default: zeke=info,warn (ignored ZEKE_LOG=zeke=[bad)
            Config: zeke=error,error
            Config: zeke=warn,warn
            Default: zeke=info,warn"#]]
        .assert_eq(&got);
    }

    #[test]
    fn names_round_trip() {
        for l in LogLevel::ALL {
            assert_eq!(LogLevel::parse(l.as_str()), Some(l));
        }
        assert_eq!(LogLevel::parse("loud"), None);
    }
}
