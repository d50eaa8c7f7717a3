// Celeriac's interop harness around node-celery 0.2.8 (npm), a client that sends protocol v1.
//
//   node interop.js send BROKER BACKEND QUEUE CASES_JSON [WAIT_SECONDS]
//
// Sends each case of the conformance set node-celery can express (its capability file:
// sdk/celeriac/interop/clients/node-celery.toml) and prints one JSON line per case, {"case", "id"}
// or {"case", "skipped": reason}. With WAIT_SECONDS it then waits for each result through
// node-celery's Redis result backend, prints {"case", "id", "status", "result"} and, when the set
// has read_back, sends what it read as that case. node-celery has no worker.
"use strict";

const fs = require("fs");
const celery = require("node-celery");

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

// What node-celery's v1 message can carry: eta, expires and retries; no priority, no time
// limits (v1's "timeouts" is not Celery's timelimit), no canvas.
function optionsFor(c, queue) {
  const opts = { queue: queue };
  const now = Date.now();
  for (const [key, value] of Object.entries(c.options || {})) {
    if (key === "countdown" || key === "eta_in") opts.eta = new Date(now + value * 1000);
    else if (key === "expires_in") opts.expires = new Date(now + value * 1000);
    else if (key === "retries") opts.retries = value;
    else return { skipped: `node-celery 0.2.8 cannot send ${key}` };
  }
  if (c.canvas) return { skipped: `node-celery 0.2.8 has no ${c.canvas}` };
  return { opts };
}

function waitFor(result, seconds) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(null), seconds * 1000);
    const done = (meta) => {
      clearTimeout(timer);
      resolve(meta);
    };
    if (result.result !== null) done(result.result);
    else result.on("ready", done);
  });
}

function connect(broker, backend, queue) {
  const client = celery.createClient({
    CELERY_BROKER_URL: broker,
    CELERY_RESULT_BACKEND: backend,
    CELERY_DEFAULT_QUEUE: queue,
  });
  return new Promise((resolve, reject) => {
    client.on("error", reject);
    client.on("connect", () => resolve(client));
  });
}

// On AMQP, node-celery publishes through the default exchange once it has opened, without
// confirms: a harness that exits at once loses its messages. Its createTask takes the exchange
// to publish through, so the harness gives it the default exchange in confirm mode and waits
// for each confirm.
function confirmingExchange(client) {
  if (client.conf.broker_type !== "amqp") return Promise.resolve(undefined);
  return new Promise((resolve) => client.broker.exchange("", { confirm: true }, resolve));
}

function call(client, exchange, task, args, kwargs, opts, confirms) {
  if (!exchange) return client.createTask(task).call(args, kwargs, opts);
  let confirmed;
  confirms.push(new Promise((resolve) => (confirmed = resolve)));
  return client.createTask(task, {}, exchange).call(args, kwargs, opts, (failed, err) => {
    if (failed) console.error(`publish of ${task} not confirmed: ${err}`);
    confirmed();
  });
}

async function send(broker, backend, queue, casesPath, waitSeconds) {
  const cases = JSON.parse(fs.readFileSync(casesPath, "utf-8"));
  const client = await connect(broker, backend, queue);
  const exchange = await confirmingExchange(client);
  const confirms = [];
  const sent = [];
  let readBack = null;
  for (const c of cases) {
    if (c.report) {
      readBack = c; // sent last, with what was read
      continue;
    }
    const { opts, skipped } = optionsFor(c, queue);
    if (skipped) {
      emit({ case: c.name, skipped });
      continue;
    }
    const result = call(client, exchange, c.task, c.args || [], c.kwargs || {}, opts, confirms);
    emit({ case: c.name, id: result.taskid });
    sent.push([c.name, result]);
  }
  await Promise.all(confirms);
  const report = {};
  for (const [name, result] of waitSeconds ? sent : []) {
    const meta = await waitFor(result, waitSeconds);
    if (meta === null) {
      emit({ case: name, id: result.taskid, status: "ERROR timeout", result: null });
      continue;
    }
    const failed = meta.status !== "SUCCESS";
    report[name] = failed
      ? { status: meta.status, exc_type: meta.result && meta.result.exc_type }
      : { status: meta.status, result: meta.result };
    emit({ case: name, id: result.taskid, status: meta.status, result: failed ? null : meta.result });
  }
  if (readBack && waitSeconds) {
    const args = ["read_back", report];
    const result = call(client, exchange, "interop.echo", args, {}, { queue }, confirms);
    emit({ case: "read_back", id: result.taskid });
    await Promise.all(confirms);
    await waitFor(result, waitSeconds);
  }
  if (client.conf.broker_type === "redis") {
    // Redis answers in order: once PING is answered every LPUSH before it is stored.
    await new Promise((resolve) => client.broker.redis.ping(resolve));
  }
  client.end();
  // node-amqp keeps timers (reconnect, heartbeat) after end(): leave once stdout is written.
  process.stdout.write("", () => process.exit(0));
}

const [mode, broker, backend, queue, casesPath, wait] = process.argv.slice(2);
if (mode !== "send") {
  console.error("usage: node interop.js send BROKER BACKEND QUEUE CASES_JSON [WAIT_SECONDS]");
  process.exit(2);
}
send(broker, backend, queue, casesPath, Number(wait || 0)).catch((err) => {
  console.error(err && err.stack ? err.stack : String(err));
  process.exit(1);
});
