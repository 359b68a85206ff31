//! The model-speed figure against the Ollama API stub: the very script smoke runs in the backend
//! container, run here against the stub answering with `eval_count`/`eval_duration` and `/api/ps`
//! figures (full, partial and no VRAM), and judged as smoke judges it.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};

use munero_infra::model_speed::{self, Verdict};

struct Stub {
    child: Child,
    url: String,
}

impl Stub {
    fn start(tps: &str, vram: &str) -> Stub {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("python3")
            .arg(common::repo_root().join("tests/ollama_stub/stub.py"))
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .env("STUB_MODELS", "m:1b")
            .env("STUB_EVAL_TPS", tps)
            .env("STUB_LOAD_MS", "2500")
            .env("STUB_VRAM", vram)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting the Ollama stub");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Stub { child, url: format!("http://127.0.0.1:{port}") };
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("the Ollama stub did not start");
    }

    /// The model-speed script as smoke runs it (source on stdin), with the backend's environment.
    fn measure(&self, model: &str) -> model_speed::Raw {
        let mut c = Command::new("python3")
            .arg("-")
            .env("OLLAMA_BASE_URL", &self.url)
            .env("OLLAMA_MODEL", model)
            .env("LLM_NUM_CTX", "4096")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin.take().unwrap().write_all(model_speed::SCRIPT.as_bytes()).unwrap();
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(text.lines().count(), 1, "one JSON line: {text}");
        model_speed::parse(&text).unwrap_or_else(|| panic!("no result in {text:?}"))
    }

    /// What the stub was asked: the warm-up sends the backend's context size and a short limit.
    fn generate_options(&self) -> serde_json::Value {
        let v: serde_json::Value = reqwest::blocking::get(format!("{}/__stub/requests", self.url)).unwrap().json().unwrap();
        v["requests"].as_array().unwrap().iter().find(|r| r["path"] == "/api/generate").unwrap()["body"]["options"].clone()
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(e) = self.child.stderr.take() {
            for l in BufReader::new(e).lines().map_while(Result::ok).take(5) {
                eprintln!("stub: {l}");
            }
        }
    }
}

#[test]
fn a_cpu_trial_reports_ollamas_figures_and_warns_below_the_threshold() {
    let fast = Stub::start("24", "none");
    let raw = fast.measure("m:1b");
    assert_eq!(fast.generate_options()["num_ctx"], 4096);
    match model_speed::judge(&raw, false, None, 8.0, "now") {
        Verdict::Fast(s) => {
            assert!((s.tokens_per_s - 24.0).abs() < 0.5, "{s:?}");
            assert_eq!(s.load_s, 2.5);
            assert_eq!(s.size_vram, Some(0));
            assert!(s.summary().contains("24.0 tokens/s generated"), "{}", s.summary());
        }
        v => panic!("{v:?}"),
    }
    let slow = Stub::start("3", "none");
    match model_speed::judge(&slow.measure("m:1b"), false, None, 8.0, "now") {
        Verdict::Slow(s, msg) => {
            assert!((s.tokens_per_s - 3.0).abs() < 0.2, "{s:?}");
            assert!(msg.contains("below 8 tokens/s") && msg.contains("--size gpu"), "{msg}");
        }
        v => panic!("{v:?}"),
    }
    match model_speed::judge(&slow.measure("absent:7b"), false, None, 8.0, "now") {
        Verdict::NoFigure(why) => assert!(why.contains("absent:7b") && why.contains("404"), "{why}"),
        v => panic!("{v:?}"),
    }
}

#[test]
fn a_gpu_trial_passes_only_with_the_whole_model_in_gpu_memory() {
    let smi = || Some(Ok("Tesla T4, 15360 MiB".to_string()));
    let full = Stub::start("40", "full");
    match model_speed::judge(&full.measure("m:1b"), true, smi(), 8.0, "now") {
        Verdict::Fast(s) => assert_eq!(s.vram_share(), Some(1.0)),
        v => panic!("{v:?}"),
    }
    let partial = Stub::start("40", "partial");
    match model_speed::judge(&partial.measure("m:1b"), true, smi(), 8.0, "now") {
        Verdict::Failed(Some(s), why) => {
            assert!((s.vram_share().unwrap() - 0.6).abs() < 0.01);
            assert!(why.contains("only 60% in GPU memory"), "{why}");
        }
        v => panic!("{v:?}"),
    }
    let none = Stub::start("40", "none");
    match model_speed::judge(&none.measure("m:1b"), true, smi(), 8.0, "now") {
        Verdict::Failed(Some(_), why) => assert!(why.contains("only 0% in GPU memory"), "{why}"),
        v => panic!("{v:?}"),
    }
}
