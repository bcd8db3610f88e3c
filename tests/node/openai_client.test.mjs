// SPDX-License-Identifier: MIT
// kyozon serve driven by the official OpenAI client library, the way users
// call it: chat (plain and streamed with usage), completions, embeddings,
// models, and errors surfacing as the library's APIError with the right
// status and message. Starts the real binary on 127.0.0.1 with a free port
// and a synthetic model; stops it by its PID.
//
// Run: KZ_BIN=build/kyozon node --test tests/node/
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';

const bin = process.env.KZ_BIN || 'build/kyozon';
const dir = mkdtempSync(join(tmpdir(), 'kz-node-'));
const model = join(dir, 'tiny.gguf');
let server, client;

before(async () => {
  execFileSync(bin, ['synth', '-o', model, '--shape', 'tiny', '--type', 'q8_0', '--seed', '5', '-t', '1']);
  server = spawn(bin, ['serve', '-m', model, '--port', '0', '--model-name', 'tiny', '--ctx', '128', '-t', '1'],
                 { stdio: ['ignore', 'ignore', 'pipe'] });
  const port = await new Promise((resolve, reject) => {
    let log = '';
    const timer = setTimeout(() => reject(new Error('no listening line: ' + log)), 20000);
    server.stderr.on('data', (d) => {
      log += d;
      const m = log.match(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
  });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    const r = await fetch(`${base}/health`).catch(() => null);
    if (r && r.status === 200) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  client = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 60000 });
});

after(async () => {
  try {
    if (!server) return;
    const exited = new Promise((resolve) => server.on('exit', (code) => resolve(code)));
    server.kill('SIGTERM');
    assert.equal(await exited, 0, 'server exits 0 on SIGTERM');
  } finally {
    rmSync(dir, { recursive: true, force: true }); // the synthetic model
  }
});

test('models.list', async () => {
  const page = await client.models.list();
  assert.deepEqual(page.data.map((m) => m.id), ['tiny']);
  const m = await client.models.retrieve('tiny');
  assert.equal(m.object, 'model');
});

test('chat.completions.create', async () => {
  const r = await client.chat.completions.create({
    model: 'tiny', max_tokens: 6, temperature: 0,
    messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'Hello' }],
  });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.choices[0].message.role, 'assistant');
  assert.equal(typeof r.choices[0].message.content, 'string');
  assert.ok(['stop', 'length'].includes(r.choices[0].finish_reason));
  assert.ok(r.usage.completion_tokens <= 6);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
});

test('chat stream with usage equals the plain answer', async () => {
  const req = { model: 'tiny', max_tokens: 8, temperature: 0, messages: [{ role: 'user', content: 'Tell me' }] };
  const plain = await client.chat.completions.create(req);
  const stream = await client.chat.completions.create({ ...req, stream: true, stream_options: { include_usage: true } });
  let text = '', finish = null, usage = null, id = null;
  for await (const chunk of stream) {
    if (id === null) id = chunk.id;
    assert.equal(chunk.id, id, 'one id for every chunk');
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      text += c.delta.content ?? '';
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  assert.equal(text, plain.choices[0].message.content);
  assert.equal(finish, plain.choices[0].finish_reason);
  assert.equal(usage.completion_tokens, plain.usage.completion_tokens);
});

test('greedy output through the API equals kyozon run', async () => {
  const prompt = 'Once upon a time';
  const run = execFileSync(bin, ['run', '-m', model, '-p', prompt, '-n', '12', '--temp', '0', '-t', '1'],
                           { stdio: ['ignore', 'pipe', 'ignore'] });
  const r = await client.completions.create({ model: 'tiny', prompt, max_tokens: 12, temperature: 0 });
  // JSON carries text: bytes that are not UTF-8 arrive as U+FFFD, as TextDecoder does it
  const want = new TextDecoder('utf-8').decode(run);
  assert.equal(r.choices[0].text, want);
  assert.equal(r.choices[0].finish_reason, 'length');
  assert.equal(r.usage.completion_tokens, 12);
});

test('completions.create with several prompts', async () => {
  const r = await client.completions.create({ model: 'tiny', prompt: ['One', 'Two'], max_tokens: 4, temperature: 0 });
  assert.equal(r.choices.length, 2);
  assert.deepEqual(r.choices.map((c) => c.index), [0, 1]);
  assert.equal(r.usage.completion_tokens, 8);
});

test('embeddings.create (the library asks for base64 by default)', async () => {
  const r = await client.embeddings.create({ model: 'tiny', input: ['alpha', 'beta gamma'] });
  assert.equal(r.data.length, 2);
  const v = r.data[1].embedding;
  assert.equal(v.length, 256);
  const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
  assert.ok(Math.abs(norm - 1) < 1e-4, `unit length, got ${norm}`);
  const f = await client.embeddings.create({ model: 'tiny', input: 'beta gamma', encoding_format: 'float' });
  assert.ok(f.data[0].embedding.every((x, i) => Math.abs(x - v[i]) < 1e-6), 'float and base64 agree');
});

test('errors arrive as APIError with status, param and message', async () => {
  await assert.rejects(
    client.chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'x' }] }),
    (e) => e instanceof OpenAI.APIError && e.status === 404 && e.code === 'model_not_found');
  await assert.rejects(
    client.chat.completions.create({ model: 'tiny', n: 2, messages: [{ role: 'user', content: 'x' }] }),
    (e) => e.status === 400 && e.param === 'n' && /n/.test(e.message));
  await assert.rejects(
    client.completions.create({ model: 'tiny', prompt: 'x'.repeat(10) + ' y'.repeat(400) }),
    (e) => e.status === 400 && e.code === 'context_length_exceeded');
});
