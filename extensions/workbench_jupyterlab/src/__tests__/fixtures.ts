import { ISummary, readSummary } from '../types';

/** A summary as the server sends it. */
export const RAW_SUMMARY = {
  workspace: '/path/to/workspace',
  models: [
    {
      name: 'credit-default',
      champion: 2,
      challenger: 3,
      canary: { share: 0.1, state: 'canary at 10%' },
      versions: [
        { version: 3, aliases: ['challenger'], gates_passed: true },
        { version: 2, aliases: ['champion'], gates_passed: true },
        { version: 1, aliases: [], gates_passed: false }
      ],
      monitoring: {
        drift_checked: true,
        estimate: {
          window: 'rows 8001-10000',
          auc: 0.751,
          lower: 0.704,
          upper: 0.799,
          held_out: 0.804,
          alert: true,
          realized: null,
          labelled: 0
        },
        segments: ['product=bnpl']
      }
    },
    {
      name: 'house-prices',
      champion: null,
      challenger: null,
      canary: { share: 0, state: 'none' },
      versions: []
    }
  ],
  runs: [
    {
      run_id: 'a1b2c3',
      run_name: 'logistic-a1',
      experiment: 'credit-default',
      status: 'FINISHED',
      start_time: '2026-11-26T17:51:38+00:00',
      metrics: { holdout_auc: 0.79, train_auc: 0.8123456 }
    },
    {
      run_id: 'd4e5f6',
      run_name: 'gbm-b2',
      experiment: 'credit-default',
      status: 'RUNNING',
      start_time: '2026-11-26T17:50:00+00:00',
      metrics: { rmse: 1.23456789 }
    },
    {
      run_id: 'g7h8i9',
      run_name: 'baseline',
      experiment: 'credit-default',
      status: 'FINISHED',
      start_time: '2026-11-26T17:40:00+00:00',
      metrics: {}
    }
  ],
  alerts: [
    {
      time: '2026-11-26T18:00:00+00:00',
      kind: 'drift',
      subject: 'credit-default/1',
      reason: 'income, product drifted (PSI 0.31)'
    },
    {
      time: '2026-11-26T18:05:00+00:00',
      kind: 'performance',
      subject: 'credit-default/2',
      reason: 'AUC fell to 0.61'
    }
  ],
  open_alerts: 2,
  dashboard: 'workbench-dashboard/'
};

export function summary(): ISummary {
  return readSummary(JSON.parse(JSON.stringify(RAW_SUMMARY)));
}
