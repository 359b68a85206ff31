//! The model-speed figure: after the model is pulled, one short generation on the trial's own
//! hardware, as Ollama itself measured it (load time, prompt and generation tokens per second)
//! and, on GPU trials, whether the model sits entirely in GPU memory (`/api/ps`). A number, not
//! a feeling, to decide when a trial needs the GPU. Parsing and judging are pure.

use serde::{Deserialize, Serialize};

/// The last figure, in the trial's directory.
pub const FILE: &str = "model-speed.json";

/// The last figure kept for the trial, if any.
pub fn load(trial_dir: &std::path::Path) -> Option<ModelSpeed> {
    serde_json::from_slice(&std::fs::read(trial_dir.join(FILE)).ok()?).ok()
}

/// Default threshold under which generation counts as too slow for a live demo.
pub const DEFAULT_MIN_TOKENS_PER_S: f64 = 8.0;

/// Runs inside the backend container (it reaches Ollama on the stack's private network, and has
/// the model's name and context size in its environment). Standard library only. Prints one
/// JSON line: Ollama's own figures, or `{"error": ...}`. No prompt or answer text is printed.
pub const SCRIPT: &str = r#"
import json, os, sys, urllib.request, urllib.error
base = os.environ.get("OLLAMA_BASE_URL", "http://ollama:11434").rstrip("/")
model = os.environ.get("OLLAMA_MODEL", "qwen2.5-coder:3b")
ctx = int(os.environ.get("LLM_NUM_CTX", "8192"))
def call(path, body=None, timeout=900):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read().decode())
try:
    g = call("/api/generate", {"model": model, "prompt": "Write one SQL query that counts the rows of a table named orders.",
                               "stream": False, "options": {"num_predict": 64, "num_ctx": ctx, "temperature": 0}})
    ps = call("/api/ps", timeout=30).get("models", [])
except urllib.error.HTTPError as e:
    print(json.dumps({"model": model, "error": "HTTP %d: %s" % (e.code, e.read().decode(errors="replace")[:200])}))
    sys.exit(0)
except Exception as e:
    print(json.dumps({"model": model, "error": str(e)[:200]}))
    sys.exit(0)
keys = ("load_duration", "prompt_eval_count", "prompt_eval_duration", "eval_count", "eval_duration", "total_duration")
out = {k: g.get(k) for k in keys}
out["model"] = model
out["ps"] = [{"name": m.get("name") or m.get("model"), "size": m.get("size"), "size_vram": m.get("size_vram")} for m in ps]
print(json.dumps(out))
"#;

/// What the script prints.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Raw {
    pub model: String,
    pub error: Option<String>,
    pub load_duration: Option<u64>,
    pub prompt_eval_count: Option<u64>,
    pub prompt_eval_duration: Option<u64>,
    pub eval_count: Option<u64>,
    pub eval_duration: Option<u64>,
    pub ps: Vec<Loaded>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Loaded {
    pub name: Option<String>,
    pub size: Option<u64>,
    pub size_vram: Option<u64>,
}

/// The figure `smoke` reports and `status` shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSpeed {
    pub model: String,
    pub load_s: f64,
    pub prompt_tokens_per_s: Option<f64>,
    pub tokens_per_s: f64,
    /// Bytes of the loaded model, and how many of them sit in GPU memory.
    pub size: Option<u64>,
    pub size_vram: Option<u64>,
    pub gpu: bool,
    /// When it was measured (RFC 3339).
    pub measured: String,
}

impl ModelSpeed {
    /// Share of the model in GPU memory, 0..=1, when the size is known.
    pub fn vram_share(&self) -> Option<f64> {
        match (self.size, self.size_vram) {
            (Some(s), Some(v)) if s > 0 => Some(v as f64 / s as f64),
            _ => None,
        }
    }

    pub fn summary(&self) -> String {
        let vram = match self.vram_share() {
            Some(f) if f >= 1.0 => ", entirely in GPU memory".to_string(),
            Some(f) if f > 0.0 => format!(", {:.0}% in GPU memory", f * 100.0),
            Some(_) => ", on the CPU (none in GPU memory)".to_string(),
            None => String::new(),
        };
        format!(
            "{}: {:.1} tokens/s generated, {} prompt, loaded in {:.1} s{vram}",
            self.model,
            self.tokens_per_s,
            self.prompt_tokens_per_s.map(|p| format!("{p:.0} tokens/s")).unwrap_or_else(|| "- tokens/s".into()),
            self.load_s
        )
    }
}

/// The judgement: a figure, and a warning (too slow) or a failure (a GPU trial not on its GPU).
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Fast(ModelSpeed),
    Slow(ModelSpeed, String),
    Failed(Option<ModelSpeed>, String),
    /// The model could not be asked (not pulled yet): no figure.
    NoFigure(String),
}

fn per_s(count: Option<u64>, ns: Option<u64>) -> Option<f64> {
    match (count, ns) {
        (Some(c), Some(d)) if d > 0 && c > 0 => Some(c as f64 / (d as f64 / 1e9)),
        _ => None,
    }
}

/// `nvidia_smi`: on GPU trials, the host's `nvidia-smi` answer (Err with its output when it failed).
pub fn judge(raw: &Raw, gpu: bool, nvidia_smi: Option<Result<String, String>>, min_tps: f64, measured: &str) -> Verdict {
    if let Some(Err(out)) = &nvidia_smi {
        return Verdict::Failed(None, format!("nvidia-smi fails on this GPU trial ({}): the driver is not working; see `munero-infra ssh <trial> -- nvidia-smi`", out.trim()));
    }
    if let Some(e) = &raw.error {
        return Verdict::NoFigure(format!("the model {} did not answer the warm-up: {e}", raw.model));
    }
    let Some(tps) = per_s(raw.eval_count, raw.eval_duration) else {
        return Verdict::NoFigure(format!("Ollama reported no generation figures for {}", raw.model));
    };
    let loaded = raw.ps.iter().find(|m| m.name.as_deref() == Some(raw.model.as_str())).or_else(|| raw.ps.first());
    let speed = ModelSpeed {
        model: raw.model.clone(),
        load_s: raw.load_duration.unwrap_or(0) as f64 / 1e9,
        prompt_tokens_per_s: per_s(raw.prompt_eval_count, raw.prompt_eval_duration),
        tokens_per_s: tps,
        size: loaded.and_then(|m| m.size),
        size_vram: loaded.and_then(|m| m.size_vram),
        gpu,
        measured: measured.to_string(),
    };
    if gpu {
        match speed.vram_share() {
            Some(f) if f >= 1.0 => {}
            Some(f) => {
                let msg = format!(
                    "the model {} is only {:.0}% in GPU memory ({} of {} bytes): the rest runs on the CPU; \
                     choose a smaller model (--model) or a GPU with more memory",
                    speed.model,
                    f * 100.0,
                    speed.size_vram.unwrap_or(0),
                    speed.size.unwrap_or(0)
                );
                return Verdict::Failed(Some(speed), msg);
            }
            None => {
                let msg = format!("Ollama does not list {} as loaded (/api/ps), so its place in GPU memory is unknown", speed.model);
                return Verdict::Failed(Some(speed), msg);
            }
        }
    }
    if tps < min_tps {
        let fix = if gpu {
            "choose a smaller model (e.g. --model qwen2.5-coder:1.5b)".to_string()
        } else {
            "for a faster assistant use --size gpu (--provider aws: an NVIDIA T4) or a smaller model (e.g. --model qwen2.5-coder:1.5b)".to_string()
        };
        let msg = format!("generation runs at {tps:.1} tokens/s, below {min_tps} tokens/s: answers will feel slow; {fix}");
        return Verdict::Slow(speed, msg);
    }
    Verdict::Fast(speed)
}

/// The script's JSON line out of the command's output (the last line that is a JSON object).
pub fn parse(stdout: &str) -> Option<Raw> {
    stdout.lines().rev().map(str::trim).filter(|l| l.starts_with('{')).find_map(|l| serde_json::from_str(l).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(eval: u64, ns: u64, size: u64, vram: u64) -> Raw {
        Raw {
            model: "m:1b".into(),
            load_duration: Some(2_500_000_000),
            prompt_eval_count: Some(40),
            prompt_eval_duration: Some(200_000_000),
            eval_count: Some(eval),
            eval_duration: Some(ns),
            ps: vec![Loaded { name: Some("m:1b".into()), size: Some(size), size_vram: Some(vram) }],
            ..Default::default()
        }
    }

    #[test]
    fn figures_come_from_ollamas_counts_and_durations() {
        let Verdict::Fast(s) = judge(&raw(64, 2_000_000_000, 100, 0), false, None, 8.0, "t") else { panic!() };
        assert_eq!((s.tokens_per_s, s.prompt_tokens_per_s, s.load_s), (32.0, Some(200.0), 2.5));
        assert_eq!(s.summary(), "m:1b: 32.0 tokens/s generated, 200 tokens/s prompt, loaded in 2.5 s, on the CPU (none in GPU memory)");
    }

    #[test]
    fn slow_generation_is_a_warning_with_the_way_out() {
        let Verdict::Slow(s, msg) = judge(&raw(10, 2_000_000_000, 100, 0), false, None, 8.0, "t") else { panic!() };
        assert_eq!(s.tokens_per_s, 5.0);
        assert!(msg.contains("5.0 tokens/s, below 8 tokens/s") && msg.contains("--size gpu") && msg.contains("smaller model"), "{msg}");
        assert!(matches!(judge(&raw(10, 2_000_000_000, 100, 0), false, None, 4.0, "t"), Verdict::Fast(_)), "the threshold is configurable");
    }

    #[test]
    fn a_gpu_trial_needs_the_whole_model_in_vram_and_a_working_nvidia_smi() {
        let ok = Some(Ok("Tesla T4, 15360 MiB".to_string()));
        match judge(&raw(64, 1_000_000_000, 100, 100), true, ok.clone(), 8.0, "t") {
            Verdict::Fast(s) => assert!(s.summary().ends_with("entirely in GPU memory"), "{}", s.summary()),
            v => panic!("{v:?}"),
        }
        match judge(&raw(64, 1_000_000_000, 100, 60), true, ok.clone(), 8.0, "t") {
            Verdict::Failed(Some(_), m) => assert!(m.contains("only 60% in GPU memory"), "{m}"),
            v => panic!("{v:?}"),
        }
        match judge(&raw(64, 1_000_000_000, 100, 0), true, ok, 8.0, "t") {
            Verdict::Failed(Some(_), m) => assert!(m.contains("only 0% in GPU memory"), "{m}"),
            v => panic!("{v:?}"),
        }
        match judge(&raw(64, 1_000_000_000, 100, 100), true, Some(Err("NVIDIA-SMI has failed".into())), 8.0, "t") {
            Verdict::Failed(None, m) => assert!(m.contains("nvidia-smi fails") && m.contains("NVIDIA-SMI has failed"), "{m}"),
            v => panic!("{v:?}"),
        }
        // The same partial figures on a CPU trial are no failure.
        assert!(matches!(judge(&raw(64, 1_000_000_000, 100, 60), false, None, 8.0, "t"), Verdict::Fast(_)));
    }

    #[test]
    fn a_model_that_cannot_answer_gives_no_figure_and_output_is_found_after_noise() {
        let r = parse("gpu: Tesla T4\nnvidia-smi exit 0\n{\"model\": \"m:1b\", \"error\": \"HTTP 404: model not found\"}\n").unwrap();
        assert!(matches!(judge(&r, false, None, 8.0, "t"), Verdict::NoFigure(m) if m.contains("404")));
        assert!(parse("no json here").is_none());
    }
}
