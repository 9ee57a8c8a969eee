import { statusText, statusTitle } from '../status';
import { readSummary } from '../types';
import { summary } from './fixtures';

describe('statusText', () => {
  it("shows the first model's champion and the open alerts", () => {
    expect(statusText(summary())).toBe('credit-default v2 · 2 alerts');
  });

  it('says one alert, and no champion', () => {
    const s = summary();
    s.open_alerts = 1;
    s.models = s.models.slice(1);
    expect(statusText(s)).toBe('house-prices no champion · 1 alert');
  });

  it('handles no models', () => {
    expect(statusText(readSummary({ models: [], open_alerts: 0 }))).toBe(
      'no models · 0 alerts'
    );
  });

  it('before a summary: loading, or unavailable after an error', () => {
    expect(statusText(null)).toBe('Workbench…');
    expect(statusText(null, 'boom')).toBe('Workbench: unavailable');
  });

  it('puts the error in the tooltip', () => {
    expect(statusTitle(null, 'No workspace')).toBe('MLOps Workbench: No workspace');
    expect(statusTitle(summary())).toContain('2 models, 2 open alerts');
  });
});

describe('readSummary', () => {
  it('fills in what is missing', () => {
    const s = readSummary({ models: [{ name: 'm', versions: [{ version: '4' }] }] });
    expect(s.models[0]).toEqual({
      name: 'm',
      champion: null,
      challenger: null,
      canary: { share: 0, state: 'none' },
      versions: [{ version: 4, aliases: [], gates_passed: null }],
      monitoring: { drift_checked: false, estimate: null, segments: [] }
    });
    expect(s.runs).toEqual([]);
    expect(s.alerts).toEqual([]);
    expect(s.open_alerts).toBe(0);
    expect(s.dashboard).toBe('workbench-dashboard/');
  });

  it('counts alerts when open_alerts is absent, drops non-numeric metrics', () => {
    const s = readSummary({
      alerts: [{ kind: 'drift', subject: 'm/1', reason: 'x' }],
      runs: [{ run_id: 'r', metrics: { auc: 0.5, note: 'n/a' } }, { run_name: 'no id' }]
    });
    expect(s.open_alerts).toBe(1);
    expect(s.runs).toHaveLength(1);
    expect(s.runs[0].run_name).toBe('r');
    expect(s.runs[0].metrics).toEqual({ auc: 0.5 });
  });

  it('survives garbage', () => {
    expect(readSummary(null).models).toEqual([]);
    expect(readSummary('x').runs).toEqual([]);
  });
});
