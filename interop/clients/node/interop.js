// Celeriac's interop harness around celery-node (npm celery-node 0.5.9).
//
//   node interop.js send   BROKER BACKEND QUEUE CASES_JSON [WAIT_SECONDS]
//   node interop.js worker BROKER BACKEND QUEUE
//
// `send` sends every case of the conformance set that celery-node can express and prints one
// JSON line per case: {"case", "id"} or {"case", "skipped": reason}. With WAIT_SECONDS it then
// reads each result through celery-node's own result backend and prints
// {"case", "id", "status", "result"}. `worker` runs the conformance tasks (interop.add, echo,
// fail, sleep) and prints {"ready": true} once it consumes.
"use strict";

const fs = require("fs");
const celery = require("celery-node");

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

// celery-node's Client.sendTask has no options: only a task name, args and kwargs.
const UNSUPPORTED_OPTIONS = {
  countdown: "countdown", eta_in: "eta", expires_in: "expires", priority: "priority",
  time_limit: "time limits", soft_time_limit: "time limits", retries: "the retries header",
};

function skipReason(c) {
  if (c.canvas) return `celery-node 0.5.9 has no ${c.canvas}`;
  for (const key of Object.keys(c.options || {})) {
    const what = UNSUPPORTED_OPTIONS[key] || key;
    return `celery-node 0.5.9 cannot send ${what} (Client.sendTask takes no options)`;
  }
  return null;
}

async function send(broker, backend, queue, casesPath, waitSeconds) {
  const cases = JSON.parse(fs.readFileSync(casesPath, "utf-8"));
  const client = celery.createClient(broker, backend, queue);
  await client.isReady();
  const sent = [];
  for (const c of cases) {
    const reason = skipReason(c);
    if (reason) {
      emit({ case: c.name, skipped: reason });
      continue;
    }
    // What Client.sendTask does, awaited: build the v2 message, publish it to the queue.
    const id = require("uuid").v4();
    const msg = client.createTaskMessage(id, c.task, c.args || [], c.kwargs || {});
    await client.broker.publish(msg.body, "", client.conf.CELERY_QUEUE, msg.headers, msg.properties);
    emit({ case: c.name, id });
    sent.push([c.name, id]);
  }
  if (waitSeconds > 0) {
    for (const [name, id] of sent) {
      const result = client.asyncResult(id);
      try {
        const value = await result.get(waitSeconds * 1000, 100);
        emit({ case: name, id, status: "SUCCESS", result: value });
      } catch (err) {
        emit({ case: name, id, status: err.message, result: null });
      }
    }
  }
  await client.disconnect();
}

function bind(names, args) {
  // celery-node calls a handler with the positional arguments, then the kwargs object.
  const kwargs = args.length ? args[args.length - 1] : {};
  const positional = args.slice(0, -1);
  const out = {};
  names.forEach((n, i) => {
    if (i < positional.length) out[n] = positional[i];
  });
  return Object.assign(out, kwargs || {});
}

async function worker(broker, backend, queue) {
  const w = celery.createWorker(broker, backend, queue);
  w.register("interop.add", (...a) => {
    const p = bind(["x", "y"], a);
    return p.x + p.y;
  });
  w.register("interop.echo", (...a) => bind(["tag", "value"], a).value);
  w.register("interop.fail", (...a) => {
    throw new Error(bind(["message"], a).message);
  });
  w.register("interop.sleep", (...a) => {
    const seconds = bind(["seconds"], a).seconds;
    return new Promise(resolve => setTimeout(() => resolve(seconds), seconds * 1000));
  });
  await w.isReady();
  const running = w.start();
  emit({ ready: true, queue });
  const stop = () => {
    w.disconnect().finally(() => process.exit(0));
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  await running;
}

async function main() {
  const [mode, broker, backend, queue, ...rest] = process.argv.slice(2);
  if (mode === "send") {
    await send(broker, backend, queue, rest[0], Number(rest[1] || 0));
    process.exit(0);
  } else if (mode === "worker") {
    await worker(broker, backend, queue);
  } else {
    console.error("usage: interop.js send BROKER BACKEND QUEUE CASES [WAIT] | worker BROKER BACKEND QUEUE");
    process.exit(2);
  }
}

main().catch(err => {
  console.error(err && err.stack ? err.stack : err);
  process.exit(1);
});
