//! The usage ledger: one SQLite row per model request (time, surface, intent, provider, model,
//! tokens, cost, time to first token, total time, outcome, fallbacks), never a prompt or an answer.
//!
//! Storage by `rusqlite` (SQLite bundled): WAL journal and a 5 s busy timeout, so several Neovim
//! instances and `zeke mcp` can write at once; rows are written by one thread per process (a
//! request never waits on the disk). Day and month boundaries are UTC, computed by SQLite
//! (`strftime('%s','now','start of day')`).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, params};

/// One request, as recorded. Times in milliseconds; `ts_ms` since the Unix epoch (UTC).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub ts_ms: i64,
    /// `"nvim"`, `"mcp"` or `"cli"`.
    pub surface: String,
    /// The intent's name (`"completion"`, `"chat"`, …).
    pub intent: String,
    pub provider: String,
    pub model: String,
    pub input_tokens: u32,
    pub cached_input_tokens: u32,
    pub output_tokens: u32,
    pub cost_usd: f64,
    /// Whether `cost_usd` is an estimate (the provider reported no usage, e.g. a stream dropped
    /// early).
    pub cost_estimated: bool,
    pub ttft_ms: Option<f64>,
    pub total_ms: f64,
    /// `"ok"`, `"cancelled"` or an error kind (`"rate_limited"`, …).
    pub outcome: String,
    /// Providers tried before the one that answered (or all of them when none did).
    pub fallbacks: u32,
    /// Whether a hedge request raced the first one.
    pub hedged: bool,
}

/// Spend in USD of one provider today and this month (UTC).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Spend {
    pub today_usd: f64,
    pub month_usd: f64,
}

/// One line of a usage summary: requests and tokens of one (provider, model) in a period.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub provider: String,
    pub model: String,
    pub requests: u64,
    pub input_tokens: u64,
    pub cached_input_tokens: u64,
    pub output_tokens: u64,
    pub cost_usd: f64,
    pub failures: u64,
}

/// Today's and this month's lines, and the newest rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub today: Vec<Line>,
    pub month: Vec<Line>,
    pub last: Vec<Row>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS usage (
    id INTEGER PRIMARY KEY,
    ts_ms INTEGER NOT NULL,
    surface TEXT NOT NULL,
    intent TEXT NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    input_tokens INTEGER NOT NULL,
    cached_input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cost_usd REAL NOT NULL,
    cost_estimated INTEGER NOT NULL,
    ttft_ms REAL,
    total_ms REAL NOT NULL,
    outcome TEXT NOT NULL,
    fallbacks INTEGER NOT NULL,
    hedged INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS usage_ts ON usage (ts_ms);
";

/// An open ledger. Reads run on the caller's thread (through one connection behind a mutex);
/// writes go to the writer thread ([`Ledger::record`] never blocks).
pub struct Ledger {
    path: PathBuf,
    reader: Mutex<Connection>,
    writer: Mutex<Option<mpsc::Sender<Msg>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

enum Msg {
    Row(Box<Row>),
    Flush(mpsc::Sender<()>),
}

fn open_conn(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    // a small page cache (256 KiB, not SQLite's 2 MB): the table is small and append-mostly
    conn.pragma_update(None, "cache_size", -256)?;
    Ok(conn)
}

/// A failure to open or read the ledger, naming the file.
#[derive(Debug, thiserror::Error)]
#[error("usage ledger {path}: {source}")]
pub struct LedgerError {
    pub path: PathBuf,
    #[source]
    pub source: rusqlite::Error,
}

impl Ledger {
    /// Opens (creating when missing) the ledger at `path`; its directory is created with mode
    /// 0700 and the file is made 0600.
    pub fn open(path: &Path) -> Result<Ledger, LedgerError> {
        let wrap = |source| LedgerError {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent() {
            let _ = std::fs::DirBuilder::new()
                .recursive(true)
                .mode_0700()
                .create(dir);
        }
        let conn = open_conn(path).map_err(wrap)?;
        conn.execute_batch(SCHEMA).map_err(wrap)?;
        set_private(path);
        let writer = open_conn(path).map_err(wrap)?;
        let (tx, rx) = mpsc::channel::<Msg>();
        let shown = path.display().to_string();
        let thread = std::thread::Builder::new()
            .name("zeke-ledger".into())
            .spawn(move || {
                for msg in rx {
                    match msg {
                        Msg::Row(row) => {
                            if let Err(e) = insert(&writer, &row) {
                                tracing::warn!(ledger = %shown, error = %e, "usage row not written");
                            }
                        }
                        Msg::Flush(done) => {
                            let _ = done.send(());
                        }
                    }
                }
            })
            .map_err(|e| LedgerError {
                path: path.to_path_buf(),
                source: rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
            })?;
        Ok(Ledger {
            path: path.to_path_buf(),
            reader: Mutex::new(conn),
            writer: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues one row for the writer thread.
    pub fn record(&self, row: Row) {
        if let Some(tx) = self
            .writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            let _ = tx.send(Msg::Row(Box::new(row)));
        }
    }

    /// Waits (up to 5 s) until every row queued before this call is written.
    pub fn flush(&self) {
        let (done, wait) = mpsc::channel();
        if let Some(tx) = self
            .writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            && tx.send(Msg::Flush(done)).is_ok()
        {
            let _ = wait.recv_timeout(Duration::from_secs(5));
        }
    }

    fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, LedgerError> {
        let conn = self.reader.lock().unwrap_or_else(|e| e.into_inner());
        f(&conn).map_err(|source| LedgerError {
            path: self.path.clone(),
            source,
        })
    }

    /// Spend per provider today and this month (UTC), over every process's rows.
    pub fn spend(&self) -> Result<Vec<(String, Spend)>, LedgerError> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT provider,
                        COALESCE(SUM(CASE WHEN ts_ms >= CAST(strftime('%s','now','start of day') AS INTEGER) * 1000
                                     THEN cost_usd END), 0),
                        COALESCE(SUM(cost_usd), 0)
                 FROM usage
                 WHERE ts_ms >= CAST(strftime('%s','now','start of month') AS INTEGER) * 1000
                 GROUP BY provider ORDER BY provider",
            )?;
            st.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    Spend {
                        today_usd: r.get(1)?,
                        month_usd: r.get(2)?,
                    },
                ))
            })?
            .collect()
        })
    }

    /// Today's and this month's totals by (provider, model), and the newest `last` rows.
    pub fn summary(&self, last: usize) -> Result<Summary, LedgerError> {
        self.read(|c| {
            let lines = |since: &str| -> rusqlite::Result<Vec<Line>> {
                let sql = format!(
                    "SELECT provider, model, COUNT(*), SUM(input_tokens), SUM(cached_input_tokens),
                            SUM(output_tokens), SUM(cost_usd),
                            SUM(CASE WHEN outcome NOT IN ('ok', 'cancelled') THEN 1 ELSE 0 END)
                     FROM usage
                     WHERE ts_ms >= CAST(strftime('%s','now','{since}') AS INTEGER) * 1000
                     GROUP BY provider, model ORDER BY SUM(cost_usd) DESC, provider, model"
                );
                let mut st = c.prepare(&sql)?;
                st.query_map([], |r| {
                    Ok(Line {
                        provider: r.get(0)?,
                        model: r.get(1)?,
                        requests: r.get::<_, i64>(2)? as u64,
                        input_tokens: r.get::<_, i64>(3)? as u64,
                        cached_input_tokens: r.get::<_, i64>(4)? as u64,
                        output_tokens: r.get::<_, i64>(5)? as u64,
                        cost_usd: r.get(6)?,
                        failures: r.get::<_, i64>(7)? as u64,
                    })
                })?
                .collect()
            };
            let today = lines("start of day")?;
            let month = lines("start of month")?;
            let mut st = c.prepare(
                "SELECT ts_ms, surface, intent, provider, model, input_tokens, cached_input_tokens,
                        output_tokens, cost_usd, cost_estimated, ttft_ms, total_ms, outcome,
                        fallbacks, hedged
                 FROM usage ORDER BY ts_ms DESC, id DESC LIMIT ?1",
            )?;
            let last = st
                .query_map([last as i64], |r| {
                    Ok(Row {
                        ts_ms: r.get(0)?,
                        surface: r.get(1)?,
                        intent: r.get(2)?,
                        provider: r.get(3)?,
                        model: r.get(4)?,
                        input_tokens: r.get(5)?,
                        cached_input_tokens: r.get(6)?,
                        output_tokens: r.get(7)?,
                        cost_usd: r.get(8)?,
                        cost_estimated: r.get(9)?,
                        ttft_ms: r.get(10)?,
                        total_ms: r.get(11)?,
                        outcome: r.get(12)?,
                        fallbacks: r.get(13)?,
                        hedged: r.get(14)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(Summary { today, month, last })
        })
    }

    /// How many rows the ledger holds.
    pub fn count(&self) -> Result<u64, LedgerError> {
        self.read(|c| {
            c.query_row("SELECT COUNT(*) FROM usage", [], |r| r.get::<_, i64>(0))
                .optional()
                .map(|n| n.unwrap_or(0) as u64)
        })
    }
}

impl Drop for Ledger {
    fn drop(&mut self) {
        // close the channel, then let the writer finish what is queued
        self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = t.join();
        }
    }
}

fn insert(c: &Connection, r: &Row) -> rusqlite::Result<()> {
    c.prepare_cached(
        "INSERT INTO usage (ts_ms, surface, intent, provider, model, input_tokens,
            cached_input_tokens, output_tokens, cost_usd, cost_estimated, ttft_ms, total_ms,
            outcome, fallbacks, hedged)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    )?
    .execute(params![
        r.ts_ms,
        r.surface,
        r.intent,
        r.provider,
        r.model,
        r.input_tokens,
        r.cached_input_tokens,
        r.output_tokens,
        r.cost_usd,
        r.cost_estimated,
        r.ttft_ms,
        r.total_ms,
        r.outcome,
        r.fallbacks,
        r.hedged,
    ])?;
    Ok(())
}

fn set_private(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
}

trait Mode0700 {
    fn mode_0700(&mut self) -> &mut Self;
}

impl Mode0700 for std::fs::DirBuilder {
    fn mode_0700(&mut self) -> &mut Self {
        use std::os::unix::fs::DirBuilderExt;
        self.mode(0o700)
    }
}

/// Milliseconds since the Unix epoch now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(provider: &str, cost: f64, ts_ms: i64) -> Row {
        Row {
            ts_ms,
            surface: "cli".into(),
            intent: "ask".into(),
            provider: provider.into(),
            model: "m".into(),
            input_tokens: 10,
            cached_input_tokens: 4,
            output_tokens: 5,
            cost_usd: cost,
            cost_estimated: false,
            ttft_ms: Some(12.5),
            total_ms: 40.0,
            outcome: "ok".into(),
            fallbacks: 0,
            hedged: false,
        }
    }

    #[test]
    fn rows_sum_by_day_and_month_across_connections() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state").join("usage.sqlite3");
        let a = Ledger::open(&path).unwrap();
        let b = Ledger::open(&path).unwrap(); // a second process
        let now = now_ms();
        a.record(row("claude", 0.25, now));
        b.record(row("claude", 0.5, now));
        b.record(row("local", 0.0, now));
        // 40 days ago: outside this month and today
        a.record(row("claude", 100.0, now - 40 * 86_400_000));
        a.flush();
        b.flush();
        let spend = a.spend().unwrap();
        assert_eq!(
            spend,
            vec![
                (
                    "claude".to_string(),
                    Spend {
                        today_usd: 0.75,
                        month_usd: 0.75
                    }
                ),
                ("local".to_string(), Spend::default()),
            ]
        );
        let s = b.summary(2).unwrap();
        assert_eq!(s.today.len(), 2);
        assert_eq!(s.today[0].provider, "claude");
        assert_eq!(s.today[0].requests, 2);
        assert_eq!(s.today[0].cached_input_tokens, 8);
        assert_eq!(s.last.len(), 2);
        assert_eq!(a.count().unwrap(), 4);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
