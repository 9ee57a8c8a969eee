import { errorMessage } from '../errors';
import { formatMetric, pickMetric, renderContent, renderMonitoring } from '../render';
import { summary } from './fixtures';

function render(selected: string[] = [], error: string | null = null) {
  const root = renderContent({ summary: summary(), error, selected: new Set(selected) });
  document.body.replaceChildren(root);
  return root;
}

function texts(root: HTMLElement, selector: string): string[] {
  return Array.from(root.querySelectorAll(selector)).map(n => n.textContent ?? '');
}

describe('renderContent', () => {
  it('lists models with champion, aliases per version and canary state', () => {
    const root = render();
    const models = root.querySelectorAll<HTMLElement>('.jp-workbench-model');
    expect(models).toHaveLength(2);
    const credit = models[0];
    expect(credit.dataset.model).toBe('credit-default');
    expect(credit.textContent).toContain('credit-default');
    expect(credit.textContent).toContain('champion');
    expect(texts(credit, '.jp-workbench-model-champion')).toEqual(['champion v2']);
    expect(texts(credit, '.jp-workbench-model-challenger')).toEqual(['challenger v3']);
    expect(texts(credit, '.jp-workbench-canary')).toEqual(['canary: canary at 10%']);

    const versions = credit.querySelectorAll<HTMLElement>('.jp-workbench-version');
    expect(Array.from(versions).map(v => v.dataset.version)).toEqual(['3', '2', '1']);
    expect(texts(versions[0], '.jp-workbench-alias')).toEqual(['challenger']);
    expect(texts(versions[1], '.jp-workbench-alias')).toEqual(['champion']);
    expect(texts(versions[2], '.jp-workbench-alias')).toEqual([]);
    expect(versions[1].querySelector('.jp-workbench-gates.jp-mod-passed')).not.toBeNull();
    expect(versions[2].querySelector('.jp-workbench-gates.jp-mod-failed')).not.toBeNull();

    expect(models[1].textContent).toContain('no champion');
    expect(texts(models[1], '.jp-workbench-canary')).toEqual(['canary: none']);
  });

  it("shows the champion's estimated AUC and drifted segments, or that nothing looked", () => {
    const root = render();
    const [credit, houses] = Array.from(root.querySelectorAll<HTMLElement>('.jp-workbench-model'));
    const m = credit.querySelector<HTMLElement>('.jp-workbench-monitoring')!;
    expect(m.dataset.alert).toBe('true');
    expect(texts(m, '.jp-workbench-estimate')).toEqual([
      'estimated AUC 0.751 (0.704–0.799) in rows 8001-10000, held-out 0.804; no labels yet — alert'
    ]);
    expect(texts(m, '.jp-workbench-segments')).toEqual(['drifted segments: product=bnpl']);
    expect(houses.querySelector('.jp-workbench-monitoring')).toBeNull(); // no champion, nothing to watch

    const quiet = renderMonitoring({ drift_checked: false, estimate: null, segments: [] });
    expect(quiet.dataset.alert).toBe('false');
    expect(quiet.textContent).toBe('never checked for drift: no alert means nothing looked');
    const labelled = renderMonitoring({ drift_checked: true, segments: [], estimate: {
      window: 'w', auc: 0.8, lower: 0.75, upper: 0.85, held_out: 0.8, alert: false, realized: 0.79, labelled: 120 } });
    expect(labelled.textContent).toBe('estimated AUC 0.800 (0.750–0.850) in w, held-out 0.800; realized 0.790 (120 labels)');
  });

  it('lists runs with a checkbox, the name and one metric', () => {
    const root = render(['d4e5f6']);
    const runs = root.querySelectorAll<HTMLElement>('.jp-workbench-run');
    expect(Array.from(runs).map(r => r.dataset.runId)).toEqual([
      'a1b2c3',
      'd4e5f6',
      'g7h8i9'
    ]);
    expect(texts(root, '.jp-workbench-run-name')).toEqual([
      'logistic-a1',
      'gbm-b2',
      'baseline'
    ]);
    expect(texts(runs[0], '.jp-workbench-run-metric')).toEqual(['holdout_auc 0.79']);
    expect(texts(runs[1], '.jp-workbench-run-metric')).toEqual(['rmse 1.235']);
    expect(runs[2].querySelector('.jp-workbench-run-metric')).toBeNull();
    expect(texts(runs[1], '.jp-workbench-run-status')).toEqual(['running']);

    const boxes = Array.from(
      root.querySelectorAll<HTMLInputElement>('input.jp-workbench-run-select')
    );
    expect(boxes.map(b => b.type)).toEqual(['checkbox', 'checkbox', 'checkbox']);
    expect(boxes.map(b => b.value)).toEqual(['a1b2c3', 'd4e5f6', 'g7h8i9']);
    expect(boxes.map(b => b.checked)).toEqual([false, true, false]);
  });

  it('lists open alerts with kind, subject and reason', () => {
    const root = render();
    const alerts = root.querySelectorAll<HTMLElement>('.jp-workbench-alert');
    expect(alerts).toHaveLength(2);
    expect(alerts[0].dataset.kind).toBe('drift');
    expect(alerts[0].classList).toContain('jp-workbench-alert-drift');
    expect(texts(alerts[0], '.jp-workbench-alert-kind')).toEqual(['drift']);
    expect(texts(alerts[0], '.jp-workbench-alert-subject')).toEqual(['credit-default/1']);
    expect(texts(alerts[0], '.jp-workbench-alert-reason')).toEqual([
      'income, product drifted (PSI 0.31)'
    ]);
    expect(texts(root, '.jp-workbench-alerts .jp-workbench-section-title')).toEqual([
      'Open alerts (2)'
    ]);
  });

  it('has the three sections in order and the workspace', () => {
    const root = render();
    expect(texts(root, '.jp-workbench-section-title')).toEqual([
      'Models (2)',
      'Recent runs (3)',
      'Open alerts (2)'
    ]);
    expect(texts(root, '.jp-workbench-workspace')).toEqual(['/path/to/workspace']);
    expect(root.querySelector('.jp-workbench-error')).toBeNull();
  });

  it('shows empty states', () => {
    const s = summary();
    s.models = [];
    s.runs = [];
    s.alerts = [];
    s.open_alerts = 0;
    const root = renderContent({ summary: s, error: null, selected: new Set() });
    expect(texts(root, '.jp-workbench-empty')).toEqual([
      'No registered models',
      'No runs yet',
      'No open alerts'
    ]);
  });

  it("shows the server's error message, alone or above the last summary", () => {
    const alone = renderContent({
      summary: null,
      error: 'No workspace at /nowhere',
      selected: new Set()
    });
    expect(texts(alone, '.jp-workbench-error')).toEqual(['No workspace at /nowhere']);
    expect(alone.querySelector('.jp-workbench-model')).toBeNull();
    expect(alone.querySelector('.jp-workbench-loading')).toBeNull();

    const stale = render([], 'boom');
    expect(texts(stale, '.jp-workbench-error')).toEqual(['boom']);
    expect(stale.firstElementChild?.classList).toContain('jp-workbench-error');
    expect(stale.querySelectorAll('.jp-workbench-model')).toHaveLength(2);
  });

  it('says loading before the first summary', () => {
    const root = renderContent({ summary: null, error: null, selected: new Set() });
    expect(texts(root, '.jp-workbench-loading')).toEqual(['Loading…']);
  });

  it('does not interpret names as HTML', () => {
    const s = summary();
    s.models[0].name = '<img src=x onerror=alert(1)>';
    const root = renderContent({ summary: s, error: '<b>x</b>', selected: new Set() });
    expect(root.querySelector('img')).toBeNull();
    expect(root.querySelector('b')).toBeNull();
    expect(texts(root, '.jp-workbench-model-name')[0]).toBe('<img src=x onerror=alert(1)>');
  });
});

describe('metrics', () => {
  it('prefers the holdout AUC, else the first metric by name', () => {
    expect(pickMetric({ b: 1, holdout_auc: 0.7, a: 2 })).toEqual(['holdout_auc', 0.7]);
    expect(pickMetric({ zeta: 1, alpha: 2 })).toEqual(['alpha', 2]);
    expect(pickMetric({})).toBeNull();
  });

  it('formats with four significant digits', () => {
    expect(formatMetric(0.79)).toBe('0.79');
    expect(formatMetric(0.812345)).toBe('0.8123');
    expect(formatMetric(12)).toBe('12');
    expect(formatMetric(1234.567)).toBe('1235');
  });
});

describe('errorMessage', () => {
  it("uses the server's JSON message", () => {
    expect(errorMessage(500, 'Internal Server Error', '{"message": "No workspace"}')).toBe(
      'No workspace'
    );
  });

  it('falls back to the status line, with a hint on 404', () => {
    expect(errorMessage(502, 'Bad Gateway', '<html>')).toBe(
      'The workbench server answered 502 Bad Gateway'
    );
    expect(errorMessage(404, 'Not Found', '')).toContain('workbench.jupyter');
  });
});
