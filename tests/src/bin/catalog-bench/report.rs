//! The results table: one row per figure, beside the limit it is compared with.

use std::time::Duration;

/// One figure.
pub struct Row {
    scenario: String,
    figure: String,
    value: String,
    limit: String,
    ratio: String,
    target: String,
    met: String,
}

impl Row {
    pub fn new(scenario: &str, figure: impl Into<String>, value: impl Into<String>) -> Row {
        Row {
            scenario: scenario.into(),
            figure: figure.into(),
            value: value.into(),
            limit: "-".into(),
            ratio: "-".into(),
            target: "-".into(),
            met: "-".into(),
        }
    }

    /// The limit of this machine the figure is compared with, and the ratio to it.
    pub fn limit(mut self, limit: impl Into<String>, ratio: Option<f64>) -> Row {
        self.limit = limit.into();
        self.ratio = ratio.map_or("-".into(), |r| format!("{r:.2}"));
        self
    }

    /// The target and whether this run met it (`None`: could not be measured).
    pub fn target(mut self, target: impl Into<String>, met: Option<bool>) -> Row {
        self.target = target.into();
        self.met = match met {
            Some(true) => "yes".into(),
            Some(false) => "NO".into(),
            None => "n/a".into(),
        };
        self
    }
}

#[derive(Default)]
pub struct Table {
    rows: Vec<Row>,
}

impl Table {
    pub fn push(&mut self, row: Row) {
        self.rows.push(row);
    }

    /// Rows that belong at the top (the limits everything else is compared with).
    pub fn prepend(&mut self, rows: Vec<Row>) {
        self.rows.splice(0..0, rows);
    }

    pub fn print(&self) {
        let header = Row {
            scenario: "scenario".into(),
            figure: "figure".into(),
            value: "value".into(),
            limit: "compared with (this machine, this run)".into(),
            ratio: "ratio".into(),
            target: "target".into(),
            met: "met".into(),
        };
        let cells = |r: &Row| {
            [
                r.scenario.clone(),
                r.figure.clone(),
                r.value.clone(),
                r.limit.clone(),
                r.ratio.clone(),
                r.target.clone(),
                r.met.clone(),
            ]
        };
        let all: Vec<[String; 7]> = std::iter::once(&header)
            .chain(&self.rows)
            .map(cells)
            .collect();
        let mut widths = [0usize; 7];
        for row in &all {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |row: &[String; 7]| {
            let mut out = String::new();
            for (i, (c, w)) in row.iter().zip(widths).enumerate() {
                // Numbers read best right-aligned.
                if i == 2 || i == 4 {
                    out.push_str(&format!("{c:>w$}  "));
                } else {
                    out.push_str(&format!("{c:<w$}  "));
                }
            }
            out.trim_end().to_string()
        };
        println!("{}", line(&all[0]));
        println!("{}", "-".repeat(widths.iter().sum::<usize>() + 2 * 6));
        let mut previous = "";
        for row in &all[1..] {
            if !previous.is_empty() && previous != row[0] {
                println!();
            }
            previous = &row[0];
            println!("{}", line(row));
        }
    }
}

pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

pub fn per_sec(rate: f64, unit: &str) -> String {
    format!("{rate:.0} {unit}/s")
}

/// The p-th percentile (0..=1) of sorted durations.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
