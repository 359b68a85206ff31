//! The client's onboarding message, built from what the deployed backend says about the client's
//! own dataset (its profile and example questions), as pure functions of those answers.

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Profile {
    pub fact_table: Option<String>,
    pub date_column: Option<String>,
    pub measures: Vec<Field>,
    pub dimensions: Vec<Field>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Field {
    pub name: String,
    pub label: String,
    pub format: Option<String>,
}

impl Field {
    fn label(&self) -> String {
        if self.label.is_empty() { self.name.clone() } else { self.label.clone() }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Examples {
    pub questions: Vec<String>,
}

pub const MIN_QUESTIONS: usize = 5;
pub const MAX_QUESTIONS: usize = 10;

/// 5 to 10 questions naming the dataset's own measures and dimensions: the backend's examples
/// first (they are what the deployed assistant was built to answer), then ones made from the
/// profile until there are at least five.
pub fn questions(p: &Profile, ex: &Examples) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let push = |q: String, out: &mut Vec<String>| {
        if !q.trim().is_empty() && !out.iter().any(|o| o.eq_ignore_ascii_case(&q)) && out.len() < MAX_QUESTIONS {
            out.push(q);
        }
    };
    for q in &ex.questions {
        push(q.clone(), &mut out);
    }
    let sums: Vec<&Field> = p.measures.iter().filter(|m| m.name != "rows" && !m.name.starts_with("avg_")).collect();
    let avgs: Vec<&Field> = p.measures.iter().filter(|m| m.name.starts_with("avg_")).collect();
    let money = sums.iter().find(|m| m.format.as_deref() == Some("currency")).or(sums.first()).copied();
    let dims = &p.dimensions;
    let rows = p.measures.iter().find(|m| m.name == "rows").map(|m| m.label().to_lowercase());
    let mut made = Vec::new();
    if let Some(m) = money {
        made.push(format!("What was the total {} last month?", m.label().to_lowercase()));
        if let Some(d) = dims.first() {
            made.push(format!("Compare {} by {} for the last 3 months", m.label().to_lowercase(), d.label().to_lowercase()));
        }
        made.push(format!("How did {} develop per week in the last quarter?", m.label().to_lowercase()));
    }
    if let (Some(a), Some(d)) = (avgs.first(), dims.get(1).or(dims.first())) {
        made.push(format!("Which {} has the highest {}?", d.label().to_lowercase(), a.label().to_lowercase()));
    }
    if let (Some(r), Some(d)) = (&rows, dims.last()) {
        made.push(format!("How many {r} per {} this year?", d.label().to_lowercase()));
    }
    // A few of our own beside the backend's, so the message also names the measures by name.
    let target = (out.len() + 2).clamp(MIN_QUESTIONS + 2, MAX_QUESTIONS);
    for q in made {
        if out.len() >= target {
            break;
        }
        push(q, &mut out);
    }
    out
}

/// Everything the message says; the password only when asked for.
#[derive(Debug, Clone)]
pub struct Message {
    pub trial: String,
    pub url: String,
    pub user: String,
    pub password: Option<String>,
    /// A certificate browsers do not trust (Caddy's own CA, or a staging CA): they warn.
    pub own_ca: bool,
    pub dataset: String,
    pub measures: Vec<String>,
    pub dimensions: Vec<String>,
    pub questions: Vec<String>,
    pub feedback: Option<String>,
    /// The trial's last day (YYYY-MM-DD, UTC).
    pub ends: String,
}

impl Message {
    pub fn from_profile(p: &Profile) -> (String, Vec<String>, Vec<String>) {
        let rows = p.measures.iter().find(|m| m.name == "rows").map(Field::label);
        let dataset = rows.or_else(|| p.fact_table.clone()).unwrap_or_else(|| "your data".into());
        let measures = p.measures.iter().filter(|m| m.name != "rows" && !m.name.starts_with("avg_")).map(Field::label).collect();
        let dimensions = p.dimensions.iter().map(Field::label).collect();
        (dataset, measures, dimensions)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Markdown,
    Html,
}

/// The parts of the message, in order: (heading, lines). Rendering only decides the markup.
fn sections(m: &Message) -> Vec<(&'static str, Vec<String>)> {
    let password = match &m.password {
        Some(p) => format!("Password: {p}"),
        None => "Password: sent to you separately, never in this message".to_string(),
    };
    let mut access = vec![format!("Address: {}", m.url), format!("User name: {}", m.user), password];
    if m.own_ca {
        access.push("Your browser will warn that the certificate is not trusted: this trial does not have a publicly trusted certificate yet. The connection is still encrypted.".into());
    }
    let feedback = match &m.feedback {
        Some(f) => format!("Tell us what works and what does not: write to {f}."),
        None => "Tell us what works and what does not: reply to this message.".into(),
    };
    vec![
        ("Your access", access),
        (
            "Questions to start with",
            m.questions.clone(),
        ),
        (
            "What the assistant can do",
            vec![
                format!(
                    "Answer questions about your {} in plain language, with a table, a chart and the SQL it ran.",
                    m.dataset.to_lowercase()
                ),
                format!(
                    "Show dashboards of {} by {}.",
                    list(&m.measures, 4),
                    list(&m.dimensions, 4)
                ),
            ],
        ),
        (
            "What it cannot do",
            vec![
                "Change your data: it reads a read-only copy.".into(),
                "See anything outside this dataset, or reach the internet.".into(),
                "Be right every time: check important figures against the table and SQL it shows.".into(),
            ],
        ),
        ("Feedback", vec![feedback]),
        (
            "End of the trial",
            vec![format!(
                "The trial ends on {}; that day the server and every copy of your data on it are deleted, and nothing is kept.",
                m.ends
            )],
        ),
    ]
}

fn list(items: &[String], n: usize) -> String {
    let v: Vec<String> = items.iter().take(n).map(|s| s.to_lowercase()).collect();
    match v.len() {
        0 => "your figures".into(),
        1 => v[0].clone(),
        _ => format!("{} and {}", v[..v.len() - 1].join(", "), v[v.len() - 1]),
    }
}

pub fn render(m: &Message, f: Format) -> String {
    let title = format!("Your trial of the Munero data assistant ({})", m.trial);
    let intro = "Your trial is ready. Everything you need to start is below.";
    let secs = sections(m);
    let mut s = String::new();
    match f {
        Format::Text => {
            s.push_str(&format!("{title}\n\n{intro}\n"));
            for (h, lines) in secs {
                s.push_str(&format!("\n{h}\n"));
                let numbered = h.starts_with("Questions");
                for (i, l) in lines.iter().enumerate() {
                    s.push_str(&if numbered { format!("  {}. {l}\n", i + 1) } else { format!("  {l}\n") });
                }
            }
        }
        Format::Markdown => {
            s.push_str(&format!("# {title}\n\n{intro}\n"));
            for (h, lines) in secs {
                s.push_str(&format!("\n## {h}\n\n"));
                let numbered = h.starts_with("Questions");
                for (i, l) in lines.iter().enumerate() {
                    s.push_str(&if numbered { format!("{}. {l}\n", i + 1) } else { format!("- {l}\n") });
                }
            }
        }
        Format::Html => {
            s.push_str(&format!("<h1>{}</h1>\n<p>{}</p>\n", esc(&title), esc(intro)));
            for (h, lines) in secs {
                let tag = if h.starts_with("Questions") { "ol" } else { "ul" };
                s.push_str(&format!("<h2>{}</h2>\n<{tag}>\n", esc(h)));
                for l in lines {
                    s.push_str(&format!("  <li>{}</li>\n", esc(&l)));
                }
                s.push_str(&format!("</{tag}>\n"));
            }
        }
    }
    s
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A self-test answer: 200 with no `error` and a result counts as answered.
pub fn answered(status: u16, body: &serde_json::Value) -> Result<u64, String> {
    if status != 200 {
        return Err(body["detail"].as_str().map(str::to_string).unwrap_or_else(|| format!("HTTP {status}")));
    }
    if let Some(e) = body["error"].as_str() {
        return Err(e.to_string());
    }
    Ok(body["row_count"].as_u64().unwrap_or(0))
}
