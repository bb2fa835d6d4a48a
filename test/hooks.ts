// Mocha root hooks: release the WebGPU device after the suite so that the process exits by itself.

import * as fg from '../src/index.js';

export const mochaHooks = {
  async afterAll(): Promise<void> {
    await fg.shutdown();
  },
};
