// End-to-end training on both backends (a tiny GPT memorizes a sentence, an LSTM learns to copy a
// sequence) and the training CLI as a user runs it: output files, resume, sampling and bad input.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import seedrandom from 'seedrandom';
import * as fg from '../src/index.js';
import { CharRecurrent, CharTransformer, ModelConfig } from '../examples/lib/models.js';
import { requireWebGpu } from './helpers/setup.js';

const BACKENDS: fg.DeviceName[] = ['cpu', 'webgpu'];

/** One optimizer step on the mean cross-entropy of logits [batch, seq, vocab]; returns the loss. */
function trainStep(logits: () => fg.Tensor, targets: fg.Tensor, optimizer: fg.optim.Optimizer<fg.optim.AdamOptions>, ignoreIndex = -100): fg.Tensor {
  return fg.tidy(() => {
    const out = logits();
    const vocab = out.shape[2];
    const loss = fg.nn.functional.crossEntropy(out.reshape([-1, vocab]), targets.reshape([-1]), { ignoreIndex });
    optimizer.zeroGrad();
    loss.backward();
    optimizer.step();
    return loss;
  });
}

for (const device of BACKENDS) {
  describe(`training end to end (${device})`, function () {
    before(async function () {
      if (device === 'webgpu') await requireWebGpu(this);
    });

    it('tiny GPT memorizes a sentence', async function () {
      const text = 'the quick brown fox jumps over the lazy dog';
      const vocabulary = [...new Set(text)].sort();
      const ids = Array.from(text, (c) => vocabulary.indexOf(c));
      const context = 12;
      const windows = Array.from({ length: ids.length - context }, (_, i) => i);
      const inputs = fg.tensor(windows.flatMap((i) => ids.slice(i, i + context)), { shape: [windows.length, context], dtype: 'int32', device });
      // The first positions of a window see too few characters to tell repeated letters apart ('o' is
      // followed by 'w', 'x', 'v' and 'g'), so only positions with at least `known` characters count.
      const known = 5;
      const target = (i: number) => ids.slice(i + 1, i + context + 1).map((id, p) => (p + 1 < known ? -100 : id));
      const targets = fg.tensor(windows.flatMap(target), { shape: [windows.length, context], dtype: 'int32', device });

      fg.manualSeed(7);
      const config: ModelConfig = { model: 'gpt', vocabSize: vocabulary.length, context, dim: 32, layers: 1, heads: 2, dropout: 0 };
      const model = new CharTransformer(config, device);
      for (const p of model.parameters()) expect(p.device).to.equal(device);
      const optimizer = new fg.optim.AdamW(model.parameters(), { lr: 1e-2, weightDecay: 0 });
      let first = NaN;
      let loss = NaN;
      let liveAfterFirstSteps = 0;
      for (let step = 0; step < 100; step++) {
        const l = trainStep(() => model.forward(inputs), targets, optimizer);
        loss = await l.item();
        l.dispose();
        if (step === 0) first = loss;
        if (step === 4) liveAfterFirstSteps = fg.memory(device).liveBytes;
      }
      expect(first, 'initial loss near ln(vocab)').to.be.closeTo(Math.log(vocabulary.length), 0.5);
      expect(loss, 'final loss').to.be.below(0.02);
      // Scratch buffers of the WebGPU backend come and go, so live memory may shrink but must not grow.
      expect(fg.memory(device).liveBytes, 'live bytes stay flat across steps').to.be.at.most(liveAfterFirstSteps);
    });

    it('LSTM learns to copy a sequence', async function () {
      // Inputs: 4 random symbols (0-3), a delimiter (4), then 4 blanks (5). Targets: the symbols again
      // after the delimiter; the other positions are ignored.
      const symbols = 4;
      const length = 4;
      const random = seedrandom.alea('copy');
      const makeBatch = (rows: number) => {
        const x: number[] = [];
        const y: number[] = [];
        for (let r = 0; r < rows; r++) {
          const seq = Array.from({ length }, () => Math.floor(random() * symbols));
          x.push(...seq, symbols, ...Array(length).fill(symbols + 1));
          y.push(...Array(length + 1).fill(-100), ...seq);
        }
        const shape = [rows, 2 * length + 1];
        return { x: fg.tensor(x, { shape, dtype: 'int32', device }), y: fg.tensor(y, { shape, dtype: 'int32', device }), expected: y };
      };

      fg.manualSeed(11);
      const model = new CharRecurrent({ model: 'lstm', vocabSize: symbols + 2, context: 2 * length + 1, dim: 48, layers: 1, heads: 1, dropout: 0 }, device);
      const optimizer = new fg.optim.Adam(model.parameters(), { lr: 2e-2 });
      for (let step = 0; step < 200; step++) {
        const { x, y } = makeBatch(32);
        trainStep(() => model.forward(x), y, optimizer).dispose();
        x.dispose();
        y.dispose();
      }

      const test = makeBatch(64);
      const predicted = fg.noGrad(() => fg.tidy(() => model.forward(test.x).argmax(-1)));
      const values = await predicted.toArray();
      let correct = 0;
      let total = 0;
      test.expected.forEach((target, i) => {
        if (target < 0) return;
        total++;
        if (values[i] === target) correct++;
      });
      expect(correct / total, 'accuracy on fresh sequences').to.be.above(0.95);
    });
  });
}

// ---- the CLI, run as a user runs it ----

const ROOT = new URL('..', import.meta.url).pathname;

interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs examples/<script>.ts on the CPU backend (unless args choose another) and waits for it to exit. */
function runScript(script: 'train' | 'sample', args: string[]): CliResult {
  const result = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'examples', `${script}.ts`), '--backend', 'cpu', ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 300_000,
    env: { ...process.env, FUSEGRAD_DEBUG: '' },
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Starts a CPU training run and sends it SIGINT (Ctrl-C) once its output contains `marker`. */
function interruptAfter(args: string[], marker: string): Promise<CliResult> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'examples', 'train.ts'), '--backend', 'cpu', ...args], { cwd: ROOT });
  let stdout = '';
  let stderr = '';
  let sent = false;
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    if (!sent && stdout.includes(marker)) {
      sent = true;
      child.kill('SIGINT');
    }
  });
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => child.on('close', (status) => resolve({ status, stdout, stderr })));
}

const TEXT = 'It is a way I have of driving off the spleen and regulating the circulation. Whenever I find myself growing grim about the mouth, I account it high time to get to sea as soon as I can.\n'.repeat(12);
const TINY = ['--batch', '4', '--context', '16', '--dim', '16', '--layers', '1', '--heads', '2', '--eval-every', '2', '--seed', '3'];

describe('train CLI', function () {
  let dir: string;
  let data: string;

  before(function () {
    dir = mkdtempSync(join(tmpdir(), 'fusegrad-train-'));
    data = join(dir, 'text.txt');
    writeFileSync(data, TEXT);
  });

  after(function () {
    rmSync(dir, { recursive: true, force: true });
  });

  it('trains, writes its files and exits by itself', async function () {
    const out = join(dir, 'run');
    const result = runScript('train', ['--data', data, '--steps', '4', '--out', out, ...TINY]);
    expect(result.stderr).to.equal('');
    expect(result.status).to.equal(0);
    expect(result.stdout).to.match(/^val loss \d+\.\d+$/m);
    expect(result.stdout).to.match(/^tokens\/s \d+$/m);
    expect(result.stdout).to.contain('sample (temperature 0.8):');
    for (const file of ['model.safetensors', 'optimizer.safetensors', 'config.json', 'metrics.json', 'loss.svg']) {
      expect(existsSync(join(out, file)), file).to.equal(true);
    }

    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    expect(config.vocabulary).to.deep.equal([...new Set(TEXT)].sort());
    expect(config.modelConfig).to.deep.include({ model: 'gpt', vocabSize: config.vocabulary.length, context: 16, dim: 16, layers: 1, heads: 2 });
    expect(config.step).to.equal(4);
    const metrics = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8'));
    expect(metrics.history.train.map(([step]: number[]) => step)).to.deep.equal([1, 2, 3, 4]);
    expect(metrics.history.validation.map(([step]: number[]) => step)).to.deep.equal([2, 4]);
    expect(readFileSync(join(out, 'loss.svg'), 'utf8')).to.match(/^<svg[^>]*>/);

    const weights = await fg.load(join(out, 'model.safetensors'), { device: 'cpu' });
    expect([...weights['tokenEmbedding.weight'].shape]).to.deep.equal([config.vocabulary.length, 16]);
  });

  it('resumes exactly after Ctrl-C', async function () {
    const straight = join(dir, 'straight');
    const split = join(dir, 'split');
    expect(runScript('train', ['--data', data, '--steps', '6', '--out', straight, ...TINY]).status).to.equal(0);

    const interrupted = await interruptAfter(['--data', data, '--steps', '6', '--out', split, ...TINY], 'step 2/6');
    expect(interrupted.status).to.equal(130);
    expect(interrupted.stdout).to.match(/interrupted at step [2-5]; the checkpoint in .*split continues with: npm run train -- --resume /);
    const stoppedAt = JSON.parse(readFileSync(join(split, 'config.json'), 'utf8')).step;
    expect(stoppedAt).to.be.within(2, 5);

    const resumed = runScript('train', ['--resume', split]);
    expect(resumed.status, resumed.stderr).to.equal(0);
    expect(resumed.stdout).to.contain(`resuming ${split} at step ${stoppedAt}`);
    expect(JSON.parse(readFileSync(join(split, 'config.json'), 'utf8')).step).to.equal(6);
    const metrics = JSON.parse(readFileSync(join(split, 'metrics.json'), 'utf8'));
    expect(metrics.history.train.map(([step]: number[]) => step)).to.deep.equal([1, 2, 3, 4, 5, 6]);

    const a = await fg.load(join(straight, 'model.safetensors'), { device: 'cpu' });
    const b = await fg.load(join(split, 'model.safetensors'), { device: 'cpu' });
    for (const name of Object.keys(a)) {
      expect(Array.from(await b[name].toArray()), name).to.deep.equal(Array.from(await a[name].toArray()));
    }
  });

  it('samples from a trained run', function () {
    const result = runScript('sample', ['--from', join(dir, 'run'), '--prompt', 'the ', '--tokens', '20']);
    expect(result.stderr).to.equal('');
    expect(result.status).to.equal(0);
    expect(result.stdout.startsWith('the ')).to.equal(true);
    expect(Array.from(result.stdout.replace(/\n$/, '')).length).to.equal(24);
  });

  it('trains an LSTM on WebGPU', async function () {
    await requireWebGpu(this);
    const out = join(dir, 'lstm');
    const result = runScript('train', ['--data', data, '--model', 'lstm', '--steps', '2', '--out', out, ...TINY, '--backend', 'webgpu']);
    expect(result.status, result.stderr).to.equal(0);
    expect(result.stderr, 'Dawn may print warnings, but no errors').not.to.contain('error');
    expect(result.stdout).to.contain('lstm with');
    expect(result.stdout).to.contain('on webgpu');
  });

  describe('bad input', function () {
    const cases: { name: string; args: () => string[]; message: RegExp }[] = [
      { name: 'missing data file', args: () => ['--data', join(dir, 'nowhere.txt')], message: /--data .*nowhere.txt: the file does not exist or cannot be read \(ENOENT\)/ },
      { name: 'empty data file', args: () => ['--data', emptyFile(dir)], message: /--data .*empty.txt is empty/ },
      { name: 'text shorter than a context', args: () => ['--data', shortFile(dir), '--context', '64'], message: /the text has 40 characters, too short for a context of 64/ },
      { name: 'vocabulary mismatch on resume', args: () => ['--resume', join(dir, 'run'), '--data', otherTextFile(dir), '--steps', '8'], message: /vocabulary mismatch with .*run: the text has 1 characters that the checkpoint's vocabulary lacks \("Z"\)/ },
      { name: 'steps not a number', args: () => ['--steps', 'abc'], message: /--steps must be a positive integer, got "abc"/ },
      { name: 'unknown model', args: () => ['--model', 'foo'], message: /--model must be one of gpt, lstm, gru, rnn, got "foo"/ },
      { name: 'unknown option', args: () => ['--bogus'], message: /Unknown option '--bogus'/ },
      { name: 'missing option value', args: () => ['--lr'], message: /Option '--lr <value>' argument missing/ },
      { name: 'negative number as a separate word', args: () => ['--steps', '-3'], message: /Option '--steps' argument is ambiguous\..*use '--steps=-XYZ'/ },
      { name: 'heads not dividing dim', args: () => ['--dim', '30', '--heads', '4'], message: /--dim 30 must be divisible by --heads 4/ },
      { name: 'zero learning rate', args: () => ['--lr', '0'], message: /--lr must be a number greater than 0, got "0"/ },
      { name: 'missing resume folder', args: () => ['--resume', join(dir, 'absent')], message: /--resume .*absent: the folder does not exist/ },
      { name: 'resume without more steps', args: () => ['--resume', join(dir, 'run'), '--steps', '4'], message: /has already trained 4 steps; pass --steps larger than 4/ },
      { name: 'resume with another model', args: () => ['--resume', join(dir, 'run'), '--dim', '32', '--steps', '8'], message: /--dim 32 differs from the checkpoint's 16/ },
    ];

    for (const c of cases) {
      it(c.name, function () {
        const result = runScript('train', c.args());
        expect(result.status, result.stderr).to.equal(2);
        expect(result.stderr).to.match(/^error: /);
        expect(result.stderr).to.match(c.message);
        expect(result.stderr, 'no stack trace').not.to.match(/^\s+at /m);
      });
    }

    it('sample without --from', function () {
      const result = runScript('sample', []);
      expect(result.status).to.equal(2);
      expect(result.stderr).to.equal('error: --from DIR is required: the output folder of npm run train (for example runs/gpt)\n');
    });
  });
});

function emptyFile(dir: string): string {
  const path = join(dir, 'empty.txt');
  writeFileSync(path, '');
  return path;
}

function shortFile(dir: string): string {
  const path = join(dir, 'short.txt');
  writeFileSync(path, 'Call me Ishmael. Some years ago, never m');
  return path;
}

function otherTextFile(dir: string): string {
  const path = join(dir, 'other.txt');
  writeFileSync(path, `${TEXT}Z`);
  return path;
}
