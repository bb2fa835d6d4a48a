// quietly(): the wait that slows the webgpu package's polling must leave setImmediate as it found it,
// keep JavaScript callbacks on the real setImmediate, and pass results and errors through.

import { expect } from 'chai';
import * as fg from '../src/index.js';
import { quietly } from '../src/backends/webgpu/quiet-wait.js';
import { requireWebGpu } from './helpers/setup.js';

const realImmediate = globalThis.setImmediate;

describe('quietly', () => {
  it('returns the result and restores setImmediate', async () => {
    const value = await quietly(Promise.resolve(42));
    expect(value).to.equal(42);
    expect(globalThis.setImmediate).to.equal(realImmediate);
  });

  it('passes a rejection through and restores setImmediate', async () => {
    let caught: unknown = null;
    try {
      await quietly(Promise.reject(new Error('mapAsync failed')));
    } catch (error) {
      caught = error;
    }
    expect((caught as Error).message).to.equal('mapAsync failed');
    expect(globalThis.setImmediate).to.equal(realImmediate);
  });

  it('keeps the patch until the last of overlapping waits ends', async () => {
    let releaseFirst: () => void = () => {};
    const first = quietly(new Promise<void>((resolve) => { releaseFirst = resolve; }));
    const second = quietly(new Promise((resolve) => setTimeout(resolve, 5)));
    expect(globalThis.setImmediate).not.to.equal(realImmediate);
    await second;
    expect(globalThis.setImmediate).not.to.equal(realImmediate);
    releaseFirst();
    await first;
    expect(globalThis.setImmediate).to.equal(realImmediate);
  });

  // Called from a timer callback, the real setImmediate runs before a setTimeout(0) queued first; a
  // callback moved to a timer runs after it.
  const orderAfterSpin = (callback: (done: () => void) => () => void): Promise<string[]> => {
    const order: string[] = [];
    let release: () => void = () => {};
    const waiting = quietly(new Promise<void>((resolve) => { release = resolve; }));
    return new Promise<string[]>((resolve) => {
      const done = () => {
        order.push('immediate');
        release();
        void waiting.then(() => resolve(order));
      };
      setTimeout(() => {
        setTimeout(() => order.push('timeout'), 0);
        setImmediate(callback(done));
      }, 2);
    }).then(async (o) => {
      await new Promise((r) => setTimeout(r, 5));
      return o;
    });
  };

  it('runs JavaScript callbacks through the real setImmediate during a wait', async () => {
    expect(await orderAfterSpin((done) => () => done())).to.deep.equal(['immediate', 'timeout']);
  });

  it('moves native callbacks (the binding\'s polls) to a timer after the spin window', async () => {
    // A bound function prints as native code, as the binding's callback does.
    expect(await orderAfterSpin((done) => done.bind(null))).to.deep.equal(['timeout', 'immediate']);
  });

  describe('on WebGPU', () => {
    before(async function () {
      await requireWebGpu(this);
    });

    it('leaves setImmediate unchanged after synchronize() and a read', async () => {
      const x = fg.arange(0, 1000).mul(2);
      await fg.synchronize();
      expect(globalThis.setImmediate).to.equal(realImmediate);
      const values = await x.toArray();
      expect(values[999]).to.equal(1998);
      expect(globalThis.setImmediate).to.equal(realImmediate);
      x.dispose();
    });
  });
});
