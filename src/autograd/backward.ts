// Reverse-mode differentiation: walk the tape backwards from a root, applying each node's chain rule.

import { noGrad } from '../runtime.js';
import type { Tensor } from '../tensor/tensor.js';
import { keep } from '../tensor/scope.js';
import type { Node } from './node.js';

export interface BackwardOptions {
  /** Keep the saved tensors so that backward can run through the same graph again. */
  retainGraph?: boolean;
}

/**
 * Accumulates d(root)/d(leaf) into every leaf's `.grad`, as torch.Tensor.backward does. Nodes run in
 * reverse tape order, and a branch whose inputs need no gradient is never visited.
 */
export function runBackward(root: Tensor, gradient: Tensor, options: BackwardOptions = {}): void {
  noGrad(() => {
    if (!root.gradFn) {
      accumulate(root, gradient.clone());
      return;
    }

    // 1. Find every node reachable from the root.
    const nodes = new Map<number, Node>();
    const stack: Node[] = [root.gradFn];
    while (stack.length > 0) {
      const node = stack.pop()!;
      if (nodes.has(node.seq)) continue;
      nodes.set(node.seq, node);
      for (const edge of node.edges) if (edge?.node) stack.push(edge.node);
    }

    // 2. Walk them in reverse tape order, passing each node the sum of the gradients that reached it. The
    // caller's gradient is passed without a copy: ops never write to the gradients they receive, and a leaf
    // copies it before keeping it as .grad (see accumulate).
    const grads = new Map<number, Tensor>([[root.gradFn.seq, gradient.detach()]]);
    const order = [...nodes.values()].sort((a, b) => b.seq - a.seq);
    try {
      for (const node of order) {
        const grad = grads.get(node.seq);
        if (!grad) continue;
        grads.delete(node.seq);
        let inputGrads: (Tensor | null)[];
        try {
          inputGrads = node.backwardFn(grad, node.saved());
        } finally {
          grad.dispose();
        }
        node.edges.forEach((edge, i) => {
          const g = inputGrads[i];
          if (!edge || !g) {
            if (g && g !== grad) g.dispose();
            return;
          }
          if (edge.leaf) {
            accumulate(edge.leaf, g, gradient);
          } else if (edge.node) {
            const previous = grads.get(edge.node.seq);
            if (previous) {
              grads.set(edge.node.seq, previous.add(g));
              previous.dispose();
              g.dispose();
            } else {
              grads.set(edge.node.seq, g);
            }
          }
        });
        if (!options.retainGraph) node.free();
      }
    } finally {
      // After an error (a freed graph, a saved tensor changed in place), release the gradients that
      // never reached their nodes.
      for (const g of grads.values()) g.dispose();
    }
  });
}

/**
 * Adds g to leaf.grad, taking ownership of g. A g that shares storage with the caller's `seed` gradient is
 * copied before it is kept, so that a later change to the seed cannot reach .grad.
 */
function accumulate(leaf: Tensor, g: Tensor, seed?: Tensor): void {
  const shaped = g.shape.length === leaf.shape.length && g.shape.every((d, i) => d === leaf.shape[i]) ? g : g.reshape(leaf.shape);
  const typed = shaped.dtype === leaf.dtype ? shaped : shaped.to(leaf.dtype);
  let next: Tensor;
  if (leaf.grad) {
    next = leaf.grad.add(typed);
    leaf.grad.dispose();
  } else if (seed && typed.sharesStorage(seed)) {
    next = typed.clone();
  } else {
    // A new handle on typed's storage, or a copy where typed is strided.
    next = typed.contiguous();
  }
  leaf.grad = keep(next);
  for (const t of new Set([g, shaped, typed])) t.dispose();
}
