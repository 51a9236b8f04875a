// The published agentkernel SDK against a live `agentkernel serve`.
// Needs AGENTKERNEL_BASE_URL and AGENTKERNEL_API_KEY; exits non-zero on the
// first failure. Run by internal/server/e2e_test.go.
import assert from "node:assert/strict";
import {
  AgentKernel, AgentKernelError, AuthError, NotFoundError, ValidationError, ServerError,
} from "agentkernel";

const client = new AgentKernel({ timeout: 60000 });
const steps = [];
async function step(name, fn) {
  const start = Date.now();
  await fn();
  steps.push(`${name} (${Date.now() - start} ms)`);
}
async function rejects(promise, cls, what) {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof cls, `${what}: got ${err?.name}: ${err?.message}`);
    return err;
  }
  assert.fail(`${what}: did not fail`);
}

await step("health", async () => {
  assert.equal(await client.health(), "ok");
});

await step("run", async () => {
  const res = await client.run(["sh", "-c", "echo hello from the sdk"]);
  assert.equal(res.output, "hello from the sdk\n");
});

await step("run non-zero exit", async () => {
  const err = await rejects(client.run(["sh", "-c", "exit 3"]), ServerError, "exit 3");
  assert.match(err.message, /code 3/);
});

await step("runStream", async () => {
  const events = [];
  for await (const ev of client.runStream(["sh", "-c", "echo one; sleep 0.2; echo two"])) {
    events.push(ev);
  }
  const types = events.map((e) => e.type);
  assert.equal(types[0], "started");
  assert.equal(types.at(-1), "done");
  const out = events.filter((e) => e.type === "output").map((e) => String(e.data.data)).join("");
  assert.equal(out, "one\ntwo\n");
  assert.equal(events.at(-1).data.exit_code, 0);
});

await step("batchRun", async () => {
  const res = await client.batchRun([{ command: ["echo", "a"] }, { command: ["echo", "b"] }]);
  assert.deepEqual(res.results.map((r) => r.output), ["a\n", "b\n"]);
  assert.deepEqual(res.results.map((r) => r.error), [null, null]);
});

const name = `sdk-${process.pid}`;
await step("sandbox session", async () => {
  const sb = await client.sandbox(name, { profile: "moderate" });
  try {
    const info = await sb.info();
    assert.equal(info.name, name);
    assert.equal(info.status, "running");
    assert.ok(info.uuid);
    assert.equal((await client.getSandboxByUuid(info.uuid)).name, name);
    const list = await client.listSandboxes();
    assert.ok(list.some((s) => s.name === name), "listed");

    const out = await sb.run(["sh", "-c", "echo $GREETING from $(pwd)"], { env: ["GREETING=hi"], workdir: "/tmp" });
    assert.equal(out.output, "hi from /tmp\n");
    assert.equal((await client.execInSandbox(name, ["echo", "direct"])).output, "direct\n");

    await client.writeFile(name, "/tmp/hello.txt", "hello, file");
    const f = await client.readFile(name, "/tmp/hello.txt");
    assert.deepEqual(f, { content: "hello, file", encoding: "utf8", size: 11 });
    await client.writeFile(name, "tmp/bin", Buffer.from([0, 255, 1]).toString("base64"), { encoding: "base64" });
    const b = await client.readFile(name, "tmp/bin");
    assert.equal(b.encoding, "base64");
    assert.deepEqual([...Buffer.from(b.content, "base64")], [0, 255, 1]);
    const w = await sb.writeFiles({ "/work/a.txt": "A", "/work/b.txt": "B" });
    assert.equal(w.written, 2);
    assert.equal((await sb.run(["cat", "/work/a.txt", "/work/b.txt"])).output, "AB");
    await client.deleteFile(name, "/tmp/hello.txt");
    await rejects(client.readFile(name, "/tmp/hello.txt"), NotFoundError, "read deleted file");
    // fetch resolves "../" itself; an escaped slash reaches the server.
    await rejects(client.readFile(name, "tmp/..%2F..%2Fetc/passwd"), ValidationError, "path traversal");
    await rejects(client.readFile(name, "proc/self/environ"), ValidationError, "system path");

    const cmd = await client.execDetached(name, ["sh", "-c", "echo bg; sleep 30"]);
    assert.equal(cmd.status, "running");
    let logs;
    for (let i = 0; i < 100; i++) {
      logs = await client.detachedLogs(name, cmd.id);
      if (logs.stdout === "bg\n") break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(logs.stdout, "bg\n");
    assert.equal((await client.detachedList(name)).length, 1);
    await client.detachedKill(name, cmd.id);
    let st;
    for (let i = 0; i < 100; i++) {
      st = await client.detachedStatus(name, cmd.id);
      if (st.status !== "running") break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(st.status, "failed");

    const ext = await client.extendTtl(name, { by: "1h" });
    assert.ok(Date.parse(ext.expires_at) > Date.now() + 59 * 60 * 1000, "extended by an hour");
    await rejects(client.extendTtl(name, { by: "soon" }), ValidationError, "bad duration");

    const audit = await client.getSandboxLogs(name);
    const types = audit.map((e) => e.type);
    for (const want of ["sandbox_created", "sandbox_started", "command_executed", "file_written", "file_deleted", "detached_started", "detached_killed", "ttl_extended"]) {
      assert.ok(types.includes(want), `audit log has ${want}: ${types}`);
    }
    const direct = audit.find((e) => e.type === "command_executed" && e.command[0] === "echo");
    assert.deepEqual(direct.command, ["echo", "direct"]);
    assert.equal(direct.exit_code, 0);
    assert.equal(direct.via, "api");
    assert.ok(audit.every((e) => e.timestamp && !("content" in e)), "timestamps, no content");
    await rejects(client.getSandboxLogs("no-such-sandbox"), NotFoundError, "logs of unknown sandbox");
  } finally {
    await sb.remove();
  }
  await rejects(client.getSandbox(name), NotFoundError, "removed sandbox");
});

await step("errors", async () => {
  await rejects(client.getSandbox("no-such-sandbox"), NotFoundError, "unknown sandbox");
  await rejects(client.run([]), ValidationError, "empty command");
  await rejects(client.createSandbox("Not A Valid Name!"), ValidationError, "bad name");
  const bad = new AgentKernel({ apiKey: "wrong-key" });
  await rejects(bad.listSandboxes(), AuthError, "wrong key");
  assert.equal(await bad.health(), "ok"); // /health stays open
  const err = await rejects(client.listSnapshots(), ServerError, "snapshots");
  assert.match(err.message, /not yet supported/);
  assert.ok(err instanceof AgentKernelError);
});

assert.deepEqual(await client.listSandboxes(), []);
for (const s of steps) console.log(`ok ${s}`);
