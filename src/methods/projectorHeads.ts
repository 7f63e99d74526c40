// REPA's trainable heads as REPA's code names them: `projectors.<i>`, one MLP per encoder
// (models/projector.ts). REPA, REG and REPA-E own one such module each, on the Projector actor.
import { Module, ModuleList } from '../nn/module.ts';
import { Projector } from '../models/projector.ts';
import type { BuildContext } from './method.ts';

export class ProjectorHeads extends Module {
  readonly projectors: ModuleList<Projector>;

  constructor(projectors: Projector[]) {
    super();
    this.projectors = this.child('projectors', new ModuleList(projectors));
  }

  projector(i = 0): Projector {
    const p = this.projectors.items[i];
    if (!p) throw new Error(`ProjectorHeads: no projector ${i}`);
    return p;
  }
}

/** One projector from the student's width to the encoder's, hidden width `dim` (REPA's build_mlp). */
export function singleProjector(c: BuildContext, dim: number, who: string): ProjectorHeads {
  if (c.encoderDim === null) throw new Error(`${who}: the projector needs the encoder's width (no encoder was built)`);
  return new ProjectorHeads([new Projector(c.config.hiddenSize, dim, c.encoderDim, c.rng.child('projectors.0'))]);
}
