//! The result table: one row per figure, with its target and whether it was met.

/// Met, missed, or a figure without a target.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Verdict {
    Met,
    Missed,
    Info,
}

/// One figure.
#[derive(Clone, Debug)]
pub struct Row {
    pub scenario: String,
    pub figure: String,
    pub value: String,
    pub target: String,
    pub verdict: Verdict,
}

/// Collects rows and prints them aligned.
#[derive(Default)]
pub struct Table {
    rows: Vec<Row>,
}

impl Table {
    /// A figure without a target.
    pub fn info(&mut self, scenario: &str, figure: &str, value: String) {
        self.push(scenario, figure, value, String::new(), Verdict::Info);
    }

    /// A figure with a target: `met` says whether it holds.
    pub fn check(&mut self, scenario: &str, figure: &str, value: String, target: &str, met: bool) {
        let v = if met { Verdict::Met } else { Verdict::Missed };
        self.push(scenario, figure, value, target.to_owned(), v);
    }

    fn push(
        &mut self,
        scenario: &str,
        figure: &str,
        value: String,
        target: String,
        verdict: Verdict,
    ) {
        let row = Row {
            scenario: scenario.to_owned(),
            figure: figure.to_owned(),
            value,
            target,
            verdict,
        };
        println!(
            "  {} | {} | {} | {} | {}",
            row.scenario,
            row.figure,
            row.value,
            row.target,
            verdict_text(verdict)
        );
        self.rows.push(row);
    }

    /// Prints the table as Markdown (pasteable into docs/performance.md).
    pub fn print(&self) {
        let headers = ["scenario", "figure", "value", "target", "verdict"];
        let cells: Vec<[String; 5]> = self
            .rows
            .iter()
            .map(|r| {
                [
                    r.scenario.clone(),
                    r.figure.clone(),
                    r.value.clone(),
                    r.target.clone(),
                    verdict_text(r.verdict).to_owned(),
                ]
            })
            .collect();
        let mut widths = headers.map(|h| h.chars().count());
        for row in &cells {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |cols: &[String]| {
            let padded: Vec<String> = cols
                .iter()
                .zip(widths)
                .map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
                .collect();
            println!("| {} |", padded.join(" | "));
        };
        line(&headers.map(str::to_owned));
        println!("|{}|", widths.map(|w| "-".repeat(w + 2)).join("|"));
        for row in &cells {
            line(row);
        }
        let missed = self
            .rows
            .iter()
            .filter(|r| r.verdict == Verdict::Missed)
            .count();
        let met = self
            .rows
            .iter()
            .filter(|r| r.verdict == Verdict::Met)
            .count();
        println!("\ntargets: {met} met, {missed} missed");
    }
}

fn verdict_text(v: Verdict) -> &'static str {
    match v {
        Verdict::Met => "met",
        Verdict::Missed => "MISSED",
        Verdict::Info => "",
    }
}

/// min / median / max of repeated runs.
#[derive(Clone, Copy, Debug)]
pub struct Stats {
    pub min: f64,
    pub median: f64,
    pub max: f64,
}

impl Stats {
    pub fn of(values: &[f64]) -> Self {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        v.sort_by(f64::total_cmp);
        if v.is_empty() {
            return Self {
                min: f64::NAN,
                median: f64::NAN,
                max: f64::NAN,
            };
        }
        let median = if v.len() % 2 == 1 {
            v[v.len() / 2]
        } else {
            (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
        };
        Self {
            min: v[0],
            median,
            max: v[v.len() - 1],
        }
    }

    /// "median (min–max)" with `f` formatting each number; just the value for one run.
    pub fn show(&self, f: impl Fn(f64) -> String) -> String {
        if self.min == self.max {
            f(self.median)
        } else {
            format!("{} ({}–{})", f(self.median), f(self.min), f(self.max))
        }
    }
}
