#![allow(non_local_definitions)]
//! Celeriac's interop harness around rusty-celery (the `celery` crate, 0.5.5).
//!
//!     interop-rust send   BROKER_URL QUEUE CASES_JSON   # send the conformance set
//!     interop-rust worker BROKER_URL QUEUE              # run the conformance tasks
//!
//! `send` prints one JSON line per case: {"case": name, "id": task id} when it was sent, or
//! {"case": name, "skipped": reason} when rusty-celery cannot express it. `worker` prints one
//! JSON line per task it ran ({"ran": task, "id": id, "status": ..., "result": ...}), since
//! rusty-celery 0.5.5 has no result backend to write them to.

use anyhow::{anyhow, bail, Result};
use celery::prelude::*;
use celery::task::Signature;
use chrono::{Duration, Utc};
use serde_json::{json, Value};
use std::io::Write;

fn emit(line: Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

#[celery::task(name = "interop.add", bind = true)]
fn add(task: &Self, x: i64, y: i64) -> TaskResult<i64> {
    let result = x + y;
    emit(json!({"ran": "interop.add", "id": task.request.id, "status": "SUCCESS", "result": result}));
    Ok(result)
}

#[celery::task(name = "interop.echo", bind = true)]
fn echo(task: &Self, tag: String, value: Value) -> TaskResult<Value> {
    emit(json!({"ran": "interop.echo", "id": task.request.id, "status": "SUCCESS",
                "tag": tag, "result": value}));
    Ok(value)
}

#[celery::task(name = "interop.fail", bind = true, max_retries = 0)]
fn fail(task: &Self, message: String) -> TaskResult<i64> {
    emit(json!({"ran": "interop.fail", "id": task.request.id, "status": "FAILURE",
                "result": message}));
    Err(TaskError::UnexpectedError(message))
}

#[celery::task(name = "interop.sleep", bind = true)]
async fn sleep(task: &Self, seconds: f64) -> TaskResult<f64> {
    tokio::time::sleep(std::time::Duration::from_secs_f64(seconds.max(0.0))).await;
    emit(json!({"ran": "interop.sleep", "id": task.request.id, "status": "SUCCESS",
                "result": seconds}));
    Ok(seconds)
}

/// The case's arguments by parameter name: positional ones first, then keyword ones.
fn params(case: &Value, names: &[&str]) -> Result<serde_json::Map<String, Value>> {
    let mut out = serde_json::Map::new();
    if let Some(args) = case["args"].as_array() {
        for (name, value) in names.iter().zip(args.iter()) {
            out.insert((*name).to_string(), value.clone());
        }
    }
    if let Some(kwargs) = case["kwargs"].as_object() {
        for (k, v) in kwargs {
            out.insert(k.clone(), v.clone());
        }
    }
    for name in names {
        if !out.contains_key(*name) {
            bail!("missing argument {name}");
        }
    }
    Ok(out)
}

fn with_options<T: Task>(mut sig: Signature<T>, options: &Value) -> Result<Signature<T>, String> {
    let Some(options) = options.as_object() else {
        return Ok(sig);
    };
    for (key, value) in options {
        sig = match key.as_str() {
            "countdown" => sig.with_countdown(value.as_u64().ok_or("countdown")? as u32),
            "eta_in" => {
                let secs = value.as_f64().ok_or("eta_in")?;
                sig.with_eta(Utc::now() + Duration::milliseconds((secs * 1000.0) as i64))
            }
            "expires_in" => {
                let secs = value.as_f64().ok_or("expires_in")?;
                sig.with_expires(Utc::now() + Duration::milliseconds((secs * 1000.0) as i64))
            }
            "soft_time_limit" => sig.with_time_limit(value.as_u64().ok_or("soft")? as u32),
            "time_limit" => sig.with_hard_time_limit(value.as_u64().ok_or("hard")? as u32),
            other => return Err(format!("rusty-celery 0.5.5 has no option {other:?}")),
        };
    }
    Ok(sig)
}

async fn send_case(app: &celery::Celery, queue: &str, case: &Value) -> Result<Value> {
    let name = case["name"].as_str().unwrap_or("?").to_string();
    if let Some(kind) = case["canvas"].as_str() {
        return Ok(json!({"case": name, "skipped": format!("rusty-celery 0.5.5 has no {kind}")}));
    }
    let task = case["task"].as_str().ok_or_else(|| anyhow!("case without task"))?;
    let options = &case["options"];
    macro_rules! go {
        ($sig:expr) => {
            match with_options($sig, options) {
                Ok(sig) => {
                    let sent = app.send_task(sig.with_queue(queue)).await?;
                    json!({"case": name, "id": sent.task_id})
                }
                Err(reason) => json!({"case": name, "skipped": reason}),
            }
        };
    }
    let from = |v: &Value| -> Result<Value> { Ok(v.clone()) };
    let line = match task {
        "interop.add" => {
            let p = params(case, &["x", "y"])?;
            let x = from(&p["x"])?.as_i64().ok_or_else(|| anyhow!("x"))?;
            let y = from(&p["y"])?.as_i64().ok_or_else(|| anyhow!("y"))?;
            go!(add::new(x, y))
        }
        "interop.echo" => {
            let p = params(case, &["tag", "value"])?;
            let tag = p["tag"].as_str().ok_or_else(|| anyhow!("tag"))?.to_string();
            go!(echo::new(tag, p["value"].clone()))
        }
        "interop.fail" => {
            let p = params(case, &["message"])?;
            let message = p["message"].as_str().ok_or_else(|| anyhow!("message"))?.to_string();
            go!(fail::new(message))
        }
        "interop.sleep" => {
            let p = params(case, &["seconds"])?;
            go!(sleep::new(p["seconds"].as_f64().ok_or_else(|| anyhow!("seconds"))?))
        }
        other => json!({"case": name, "skipped": format!("no task {other} in this harness")}),
    };
    Ok(line)
}

#[tokio::main]
async fn main() -> Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .target(env_logger::Target::Stderr)
        .init();
    let argv: Vec<String> = std::env::args().collect();
    if argv.len() < 4 {
        bail!("usage: interop-rust send BROKER QUEUE CASES_JSON | worker BROKER QUEUE");
    }
    let (mode, broker, queue) = (argv[1].as_str(), argv[2].clone(), argv[3].clone());
    let app = celery::app!(
        broker = AMQPBroker { broker },
        tasks = [add, echo, fail, sleep],
        task_routes = ["*" => queue.as_str()],
        default_queue = queue.as_str(),
        prefetch_count = 4,
        heartbeat = Some(10),
    )
    .await?;
    match mode {
        "send" => {
            let path = argv.get(4).ok_or_else(|| anyhow!("send needs CASES_JSON"))?;
            let cases: Vec<Value> = serde_json::from_slice(&std::fs::read(path)?)?;
            for case in &cases {
                emit(send_case(&app, &queue, case).await?);
            }
            app.close().await?;
        }
        "worker" => {
            emit(json!({"ready": true, "queue": queue}));
            app.consume_from(&[queue.as_str()]).await?;
        }
        other => bail!("unknown mode {other}"),
    }
    Ok(())
}
