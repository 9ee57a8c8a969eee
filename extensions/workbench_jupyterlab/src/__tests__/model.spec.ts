import { WorkbenchModel } from '../model';
import { ISummary } from '../types';
import { summary } from './fixtures';

describe('WorkbenchModel', () => {
  it('keeps the summary and emits changed', async () => {
    const model = new WorkbenchModel(async () => summary());
    let emitted = 0;
    model.changed.connect(() => emitted++);
    await model.refresh();
    expect(model.summary?.models[0].name).toBe('credit-default');
    expect(model.error).toBeNull();
    expect(model.updated).toBeInstanceOf(Date);
    expect(model.dashboard).toBe('workbench-dashboard/');
    expect(emitted).toBe(1);
  });

  it('keeps the last summary and records the error message', async () => {
    let fail = false;
    const model = new WorkbenchModel(async () => {
      if (fail) {
        throw new Error('No workspace');
      }
      return summary();
    });
    await model.refresh();
    fail = true;
    await model.refresh();
    expect(model.error).toBe('No workspace');
    expect(model.summary).not.toBeNull();
    fail = false;
    await model.refresh();
    expect(model.error).toBeNull();
  });

  it('shares one request between concurrent refreshes', async () => {
    let calls = 0;
    const model = new WorkbenchModel(async () => {
      calls++;
      return summary();
    });
    await Promise.all([model.refresh(), model.refresh(), model.refresh()]);
    expect(calls).toBe(1);
  });

  it('lists ticked runs in sidebar order and forgets unlisted ones', async () => {
    let current: ISummary = summary();
    const model = new WorkbenchModel(async () => current);
    await model.refresh();
    model.setSelected('g7h8i9', true);
    model.setSelected('a1b2c3', true);
    expect(model.selectedRunIds).toEqual(['a1b2c3', 'g7h8i9']);
    current = summary();
    current.runs = current.runs.slice(0, 2);
    await model.refresh();
    expect(model.selectedRunIds).toEqual(['a1b2c3']);
    model.setSelected('a1b2c3', false);
    expect(model.selectedRunIds).toEqual([]);
  });
});
