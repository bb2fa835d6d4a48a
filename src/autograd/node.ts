// One recorded op on the tape: how to turn the gradient of its output into gradients of its inputs,
// and the tensors it saved for that.

import type { Tensor } from '../tensor/tensor.js';

/** Maps the output's gradient to one gradient per input (null where an input needs none). */
export type BackwardFn = (grad: Tensor, saved: Tensor[]) => (Tensor | null)[];

/** The destination of an input's gradient: the node that produced the input, or the leaf tensor that accumulates it. */
export interface Edge {
  node: Node | null;
  leaf: Tensor | null;
}

let sequence = 0;

export class Node {
  /** Position on the tape: every input's node has a smaller one, so reverse order is a valid backward order. */
  readonly seq = sequence++;
  private savedTensors: Tensor[];
  private readonly savedVersions: number[];
  private freed = false;

  constructor(
    readonly op: string,
    readonly edges: (Edge | null)[],
    readonly backwardFn: BackwardFn,
    saved: Tensor[],
  ) {
    this.savedTensors = saved.map((t) => t.saveForBackward());
    this.savedVersions = saved.map((t) => t.version);
  }

  /** Returns the saved tensors, after checking that none was freed or changed in place since it was saved. */
  saved(): Tensor[] {
    if (this.freed && this.savedVersions.length > 0) {
      throw new Error(
        `${this.op}: backward through this graph a second time, but the tensors it saved were freed after the ` +
          `first backward; pass { retainGraph: true } to the first backward() to keep them`,
      );
    }
    this.savedTensors.forEach((t, i) => {
      if (t.version !== this.savedVersions[i]) {
        throw new Error(
          `${this.op}: a tensor of shape [${t.shape.join(', ')}] saved for backward was modified by an in-place op ` +
            `(version ${this.savedVersions[i]} when saved, now ${t.version}); use the out-of-place op or clone() the tensor first`,
        );
      }
    });
    return this.savedTensors;
  }

  /** Releases the saved tensors; a later backward through this node then fails with a clear error. */
  free(): void {
    for (const t of this.savedTensors) t.dispose();
    this.savedTensors = [];
    this.freed = true;
  }

  get savedBytes(): number[] {
    return this.savedTensors.map((t) => t.numel * t.elementSize);
  }
}
