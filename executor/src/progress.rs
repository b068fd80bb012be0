//! Live progress of a run: per-host bars on a terminal (indicatif), plain timestamped lines
//! prefixed by host otherwise, or JSON events (`--json`). Everything passed here is already
//! masked by the caller; the sink is given by the CLI, so the library never prints on its own.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// indicatif bars (stderr is a terminal).
    Tty,
    /// `TIME HOST message` lines.
    Plain,
    /// One JSON object per event.
    Json,
}

/// One thing that happened.
#[derive(Clone, Debug)]
pub enum Event<'a> {
    /// Connected, key checked, shell probed.
    Connected {
        /// `SHA256:` of the presented key.
        fingerprint: &'a str,
        /// Steps the plan has for this host.
        steps: usize,
    },
    /// A step starts.
    StepStart {
        /// 1-based step on the host.
        step: usize,
        /// Steps on the host.
        total: usize,
        /// Phase.
        phase: &'a str,
        /// The command (masked).
        command: &'a str,
    },
    /// A step ended.
    StepEnd {
        /// 1-based step.
        step: usize,
        /// Steps on the host.
        total: usize,
        /// `ok` or the failure status.
        status: &'a str,
        /// How long it took.
        duration: Duration,
    },
    /// A step was completed by an earlier run and is skipped.
    StepSkipped {
        /// 1-based step.
        step: usize,
        /// Steps on the host.
        total: usize,
    },
    /// Any other note about a host (masked).
    Note {
        /// Text.
        message: &'a str,
    },
    /// The host is done.
    HostEnd {
        /// `ok`, `failed`, `interrupted`, `already applied`, ….
        result: &'a str,
    },
}

/// The progress sink shared by all host tasks.
pub struct Progress {
    mode: Mode,
    out: Mutex<Box<dyn Write + Send>>,
    multi: Option<MultiProgress>,
    bars: Mutex<BTreeMap<String, ProgressBar>>,
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Progress")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl Progress {
    /// A sink in `mode`, writing lines to `out` (bars go to stderr).
    #[must_use]
    pub fn new(mode: Mode, out: Box<dyn Write + Send>) -> Self {
        let multi = (mode == Mode::Tty)
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Self {
            mode,
            out: Mutex::new(out),
            multi,
            bars: Mutex::new(BTreeMap::new()),
        }
    }

    /// The mode.
    #[must_use]
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Report `event` for `host`.
    pub fn event(&self, host: &str, event: &Event<'_>) {
        match self.mode {
            Mode::Json => self.json(host, event),
            Mode::Plain => self.plain(host, event),
            Mode::Tty => self.bar(host, event),
        }
    }

    /// A line not tied to a host (run start/end).
    pub fn line(&self, text: &str) {
        match self.mode {
            Mode::Json => {
                let v = serde_json::json!({"event": "message", "message": text});
                self.write(&v.to_string());
            }
            Mode::Plain => self.write(&format!("{} {text}", stamp())),
            Mode::Tty => match &self.multi {
                Some(m) => {
                    let _ = m.println(text);
                }
                None => self.write(text),
            },
        }
    }

    fn write(&self, line: &str) {
        if let Ok(mut out) = self.out.lock() {
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    }

    fn plain(&self, host: &str, event: &Event<'_>) {
        let text = match event {
            Event::Connected { fingerprint, .. } => format!("connected, host key {fingerprint}"),
            Event::StepStart {
                step,
                total,
                phase,
                command,
            } => format!("[{step}/{total}] {phase}: {}", first_line(command)),
            Event::StepEnd {
                step,
                total,
                status,
                duration,
            } => format!("[{step}/{total}] {status} in {}", fmt_duration(*duration)),
            Event::StepSkipped { step, total } => {
                format!("[{step}/{total}] already completed by an earlier run, skipped")
            }
            Event::Note { message } => (*message).to_owned(),
            Event::HostEnd { result } => format!("done: {result}"),
        };
        self.write(&format!("{} {host} {text}", stamp()));
    }

    fn json(&self, host: &str, event: &Event<'_>) {
        let v = match event {
            Event::Connected { fingerprint, steps } => serde_json::json!({"event": "connected",
                "host": host, "host_key": fingerprint, "steps": steps}),
            Event::StepStart {
                step,
                total,
                phase,
                command,
            } => serde_json::json!({"event": "step_start", "host": host, "step": step,
                "total": total, "phase": phase, "command": command}),
            Event::StepEnd {
                step,
                total,
                status,
                duration,
            } => serde_json::json!({"event": "step_end", "host": host, "step": step,
                "total": total, "status": status,
                "duration_ms": u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)}),
            Event::StepSkipped { step, total } => serde_json::json!({"event": "step_skipped",
                "host": host, "step": step, "total": total}),
            Event::Note { message } => {
                serde_json::json!({"event": "note", "host": host, "message": message})
            }
            Event::HostEnd { result } => {
                serde_json::json!({"event": "host_end", "host": host, "result": result})
            }
        };
        let mut v = v;
        v["time"] = serde_json::Value::String(stamp());
        self.write(&v.to_string());
    }

    fn bar(&self, host: &str, event: &Event<'_>) {
        let Some(multi) = &self.multi else { return };
        let Ok(mut bars) = self.bars.lock() else {
            return;
        };
        let bar = bars.entry(host.to_owned()).or_insert_with(|| {
            let b = multi.add(ProgressBar::new(0));
            let style = ProgressStyle::with_template("{prefix:>12} [{bar:20}] {pos}/{len} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
            b.set_style(style);
            b.set_prefix(host.to_owned());
            b
        });
        match event {
            Event::Connected { steps, .. } => {
                bar.set_length(*steps as u64);
                bar.set_message("connected");
            }
            Event::StepStart {
                step,
                total,
                command,
                ..
            } => {
                bar.set_length(*total as u64);
                bar.set_position((*step as u64).saturating_sub(1));
                bar.set_message(first_line(command));
            }
            Event::StepEnd { step, total, .. } | Event::StepSkipped { step, total } => {
                bar.set_length(*total as u64);
                bar.set_position(*step as u64);
            }
            Event::Note { message } => {
                let _ = multi.println(format!("{host} {message}"));
            }
            Event::HostEnd { result } => bar.finish_with_message((*result).to_owned()),
        }
    }
}

fn stamp() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

fn first_line(command: &str) -> String {
    let line = command.lines().next().unwrap_or_default();
    let mut s: String = line.chars().take(100).collect();
    if s.len() < command.len() {
        s.push('…');
    }
    s
}

/// `1.23s` / `45ms`.
#[must_use]
pub fn fmt_duration(d: Duration) -> String {
    if d.as_millis() < 1000 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.2}s", d.as_secs_f64())
    }
}
