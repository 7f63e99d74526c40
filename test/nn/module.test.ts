import { describe, expect, it } from 'vitest';
import { Module, ModuleList } from '../../src/nn/module.ts';
import { tensor } from '../../src/tensor/tensor.ts';

class Leaf extends Module {
  w = this.param('weight', [2, 3], (d) => d.fill(1));
  b = this.param('bias', [2]);
  rm = this.buffer('running_mean', [2]);
}
class Tree extends Module {
  blocks = this.child('blocks', new ModuleList([new Leaf(), new Leaf()]));
  head = this.child('head', new Leaf());
}

describe('Module', () => {
  it('names parameters like a PyTorch state_dict', () => {
    const t = new Tree();
    expect(t.namedParameters().map(([n]) => n)).toEqual([
      'blocks.0.weight', 'blocks.0.bias', 'blocks.1.weight', 'blocks.1.bias', 'head.weight', 'head.bias',
    ]);
    expect([...t.stateDict().keys()]).toContain('blocks.1.running_mean');
    expect(t.numParameters()).toBe(24);
  });

  it('loads strictly and lists every problem at once', () => {
    const t = new Tree();
    const sd = new Tree().stateDict();
    sd.get('head.bias')!.data.set([5, 6]);
    t.loadStateDict(sd);
    expect(t.head.b.toArray()).toEqual([5, 6]);
    sd.delete('blocks.0.bias');
    sd.set('extra', tensor([1]));
    sd.set('head.weight', tensor([1, 2], [2, 1]));
    expect(() => t.loadStateDict(sd)).toThrow(/missing keys: blocks\.0\.bias \| unexpected keys: extra \| shape mismatches: head\.weight: checkpoint \[2, 1\] vs model \[2, 3\]/);
  });

  it('train/eval reach every sub-module', () => {
    const t = new Tree().eval();
    expect(t.namedModules().every(([, m]) => !m.training)).toBe(true);
  });
});
