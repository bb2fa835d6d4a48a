// Waiting for Dawn without a busy loop. While any of its promises is pending, the `webgpu` package's
// native binding polls Dawn from a callback that re-queues itself with the global setImmediate, so the
// main thread spins for as long as the GPU works. With a software adapter (lavapipe), that spin takes a
// CPU core from the driver's own threads. On a 2-core machine, three 1024^3 matmuls took 0.9 to 1.3 s
// with the spin and 0.5 to 0.9 s with a poll about every millisecond (measured alternately, 4 runs each).
//
// quietly(promise) therefore routes the binding's re-queues through setTimeout(0) while fusegrad waits,
// after a short spell of immediate polls that keeps short waits as fast as before. Only callbacks whose
// source prints as native code (the binding's, and bound functions) are rerouted, and only during a wait.
// Other callbacks keep the real setImmediate. Outside Node, or once every wait has ended, the global is
// the original one.

type Immediate = (callback: (...args: unknown[]) => void, ...args: unknown[]) => unknown;

/** How long a wait polls at full speed before it yields between polls. */
const SPIN_MS = 0.3;

const host = globalThis as unknown as { setImmediate?: Immediate };
const original = host.setImmediate;
const nativeSource = /\{\s*\[native code\]\s*\}\s*$/;
let waiting = 0;
let spinUntil = 0;

function isNative(callback: unknown): boolean {
  return typeof callback === 'function' && nativeSource.test(Function.prototype.toString.call(callback));
}

function politeImmediate(callback: (...args: unknown[]) => void, ...args: unknown[]): unknown {
  if (performance.now() < spinUntil || !isNative(callback)) return original!(callback, ...args);
  return setTimeout(callback, 0, ...args);
}

/** Awaits `promise` (one that Dawn settles) with the binding's polling slowed after SPIN_MS. */
export async function quietly<T>(promise: Promise<T>): Promise<T> {
  if (!original) return promise;
  if (waiting++ === 0) host.setImmediate = politeImmediate;
  spinUntil = performance.now() + SPIN_MS;
  try {
    return await promise;
  } finally {
    if (--waiting === 0) host.setImmediate = original;
  }
}
