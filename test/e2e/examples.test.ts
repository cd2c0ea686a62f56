// Runs the example clients in examples/ (Apollo Client and urql) as real Node processes against a
// real gateway, and checks what they print against the database and the emulator.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Generation } from '../../src/entities/generation.js';
import { Message } from '../../src/entities/message.js';
import { Session } from '../../src/entities/session.js';
import { RUN_TIMEOUT_MS, type Run, runExample } from '../helpers/examples.js';
import { type TestGateway, startGateway } from '../helpers/gateway.js';
import { PACED_TOKEN_DELAY_MS } from '../helpers/paced.js';


interface ExampleResult {
  sessionId: string;
  tokens: number;
  streamedText: string;
  messageId: string;
  streamGenerationId: string;
  usage: { promptTokens: number; completionTokens: number; totalTokens: number };
  replyText: string;
  replyGenerationId: string;
  historyRoles: string[];
  history: Array<{ role: string; content: string }>;
}

function resultLine(run: Run): ExampleResult {
  const lines = run.stdout.split('\n').filter((l) => l.startsWith('RESULT '));
  expect(lines, `one RESULT line in stdout:\n${run.stdout}\nstderr:\n${run.stderr}`).toHaveLength(1);
  return JSON.parse(lines[0].slice('RESULT '.length)) as ExampleResult;
}

let gw: TestGateway;
beforeAll(async () => {
  // Paced like a model (see test/helpers/paced.ts): each example checks that tokens came as several events.
  gw = await startGateway({ emulator: { tokenDelayMs: PACED_TOKEN_DELAY_MS } });
});
afterAll(async () => {
  await gw?.stop();
});

const EXAMPLES = [
  { name: 'Apollo Client', file: 'examples/apollo-client.ts' },
  { name: 'urql', file: 'examples/urql.ts' },
];

describe.each(EXAMPLES)('$name example ($file)', ({ name, file }) => {
  it('creates a session, streams a turn, answers a second turn, and exits by itself with 0', async () => {
    const { key, secret } = await gw.app.services.keys.create({ name: `${name} example`, role: 'USER' });
    const requestsBefore = gw.emulator.requests.length;

    const run = await runExample(file, { GATEWAY_URL: gw.graphqlUrl, GATEWAY_KEY: secret });
    expect(run.timedOut, `${file} did not exit within ${RUN_TIMEOUT_MS} ms; stderr:\n${run.stderr}`).toBe(false);
    expect(run.code, `stderr:\n${run.stderr}`).toBe(0);
    const result = resultLine(run);

    // The session exists, belongs to the example's key (so the key reached the gateway over HTTP).
    const db = gw.orm;
    const session = await db.getRepository(Session).findOneByOrFail({ id: result.sessionId });
    expect(session.apiKeyId).toBe(key.id);
    expect(session.systemPrompt).toEqual(expect.any(String));
    expect(session.systemPrompt!.length).toBeGreaterThan(0);

    // Both turns are stored, in order; the streamed text is exactly the first stored answer.
    const rows = await db.getRepository(Message).find({ where: { sessionId: result.sessionId }, order: { seq: 'ASC' } });
    expect(rows.map((m) => [m.role, m.status])).toEqual([
      ['user', 'COMPLETE'],
      ['assistant', 'COMPLETE'],
      ['user', 'COMPLETE'],
      ['assistant', 'COMPLETE'],
    ]);
    const [user1, assistant1, user2, assistant2] = rows;
    expect(result.streamedText.length).toBeGreaterThan(0);
    expect(result.streamedText).toBe(assistant1.content);
    expect(result.messageId).toBe(assistant1.id);
    expect(result.streamGenerationId).toBe(assistant1.generationId);
    expect(result.usage.completionTokens).toBe(assistant1.completionTokens);
    expect(result.usage.totalTokens).toBe(result.usage.promptTokens + result.usage.completionTokens);
    // Tokens arrived as several events (the emulator's reply is many tokens) and were printed as they came.
    expect(result.tokens).toBeGreaterThan(1);
    expect(result.tokens).toBeLessThanOrEqual(result.usage.completionTokens);
    expect(run.stdout.slice(0, run.stdout.indexOf('RESULT '))).toContain(result.streamedText);

    // The non-streamed turn: its reply is the second stored answer, and the history is the whole session.
    expect(result.replyText).toBe(assistant2.content);
    expect(result.replyGenerationId).toBe(assistant2.generationId);
    expect(result.historyRoles).toEqual(['SYSTEM', 'USER', 'ASSISTANT', 'USER', 'ASSISTANT']);
    expect(result.history).toEqual([
      { role: 'SYSTEM', content: session.systemPrompt },
      { role: 'USER', content: user1.content },
      { role: 'ASSISTANT', content: assistant1.content },
      { role: 'USER', content: user2.content },
      { role: 'ASSISTANT', content: assistant2.content },
    ]);

    // The usage log: one streamed chat (the subscription, over websockets) and one non-streamed (the mutation).
    const generations = await db.getRepository(Generation).find({ where: { sessionId: result.sessionId }, order: { createdAt: 'ASC' } });
    expect(generations.map((g) => [g.id, g.kind, g.streamed, g.status, g.apiKeyId])).toEqual([
      [result.streamGenerationId, 'chat', true, 'COMPLETE', key.id],
      [result.replyGenerationId, 'chat', false, 'COMPLETE', key.id],
    ]);

    // Ollama (the emulator) got exactly two /api/chat requests from this run, each with the history so far.
    const chats = gw.emulator.requests.slice(requestsBefore).filter((r) => r.path === '/api/chat');
    expect(chats.map((r) => (r.body as { messages: unknown }).messages)).toEqual([
      [
        { role: 'system', content: session.systemPrompt },
        { role: 'user', content: user1.content },
      ],
      [
        { role: 'system', content: session.systemPrompt },
        { role: 'user', content: user1.content },
        { role: 'assistant', content: assistant1.content },
        { role: 'user', content: user2.content },
      ],
    ]);
    expect(session.model).toBe('llama3.2');
    expect(chats.map((r) => (r.body as { model: string }).model)).toEqual([session.model, session.model]);
    expect(chats.map((r) => r.outcome)).toEqual(['completed', 'completed']);
  }, 2 * RUN_TIMEOUT_MS);

  it('exits non-zero without a RESULT line when the key is refused', async () => {
    const requestsBefore = gw.emulator.requests.length;
    const run = await runExample(file, { GATEWAY_URL: gw.graphqlUrl, GATEWAY_KEY: 'not-a-real-key-0000000000000000' });
    expect(run.timedOut, `${file} hung after an error; stderr:\n${run.stderr}`).toBe(false);
    expect(run.code).toBe(1);
    expect(run.stdout).not.toContain('RESULT ');
    expect(run.stderr).toMatch(/UNAUTHENTICATED|api key/i);
    expect(gw.emulator.requests.slice(requestsBefore).filter((r) => r.path === '/api/chat')).toEqual([]);
  }, 2 * RUN_TIMEOUT_MS);

  it('exits non-zero without a RESULT line when the stream fails mid-way', async () => {
    const { key, secret } = await gw.app.services.keys.create({ name: `${name} example (fault)`, role: 'USER' });
    gw.emulator.addFault({ fault: { kind: 'errorAfter', tokens: 2, error: 'GPU fell over' }, path: '/api/chat', times: 1 });
    try {
      const run = await runExample(file, { GATEWAY_URL: gw.graphqlUrl, GATEWAY_KEY: secret });
      expect(run.timedOut, `${file} hung after an error; stderr:\n${run.stderr}`).toBe(false);
      expect(run.code).toBe(1);
      expect(run.stdout).not.toContain('RESULT ');
      // It failed in the streamed turn: that answer is stored as ERROR with the partial text, and
      // the example did not go on to the mutation.
      const db = gw.orm;
      const sessions = await db.getRepository(Session).findBy({ apiKeyId: key.id });
      expect(sessions).toHaveLength(1);
      const rows = await db.getRepository(Message).find({ where: { sessionId: sessions[0].id }, order: { seq: 'ASC' } });
      expect(rows.map((m) => [m.role, m.status])).toEqual([
        ['user', 'COMPLETE'],
        ['assistant', 'ERROR'],
      ]);
      expect(rows[1].content.length).toBeGreaterThan(0);
      expect(run.stdout).toContain(rows[1].content);
    } finally {
      gw.emulator.clearFaults();
    }
  }, 2 * RUN_TIMEOUT_MS);
});
