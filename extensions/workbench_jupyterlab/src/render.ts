/**
 * Plain-DOM rendering of the sidebar's content from a summary.
 *
 * Pure (no JupyterLab imports): the sidebar widget calls it on every refresh
 * and jest tests it under jsdom. Class names are stable hooks for UI tests:
 *
 * - `jp-workbench-error`: the server's error message
 * - `jp-workbench-model` (with `data-model`), `jp-workbench-version`,
 *   `jp-workbench-alias`, `jp-workbench-canary`
 * - `jp-workbench-run` (with `data-run-id`), `jp-workbench-run-select`
 *   (the checkbox), `jp-workbench-run-name`, `jp-workbench-run-metric`
 * - `jp-workbench-alert` (with `data-kind`)
 * - `jp-workbench-monitoring` (with `data-alert`), `jp-workbench-estimate`,
 *   `jp-workbench-segments`
 */
import { ISummary, IModelSummary, IMonitoring, IRunSummary, IAlert } from './types';

/** What the content is drawn from. */
export interface IViewState {
  summary: ISummary | null;
  error: string | null;
  /** Ids of the runs ticked for comparison. */
  selected: ReadonlySet<string>;
}

/** Metrics shown for a run, in order of preference. */
const PREFERRED_METRICS = [
  'holdout_auc',
  'auc',
  'roc_auc',
  'holdout_r2',
  'r2',
  'accuracy',
  'f1',
  'rmse'
];

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className?: string,
  text?: string
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

/** A number with four significant digits, without trailing zeros. */
export function formatMetric(value: number): string {
  if (Number.isInteger(value)) {
    return String(value);
  }
  return String(Number(value.toPrecision(4)));
}

/** The one metric shown for a run: a preferred one, else the first by name. */
export function pickMetric(
  metrics: { [name: string]: number }
): [string, number] | null {
  for (const name of PREFERRED_METRICS) {
    if (name in metrics) {
      return [name, metrics[name]];
    }
  }
  const names = Object.keys(metrics).sort();
  return names.length ? [names[0], metrics[names[0]]] : null;
}

function section(title: string, className: string, count?: number): {
  node: HTMLElement;
  list: HTMLUListElement;
} {
  const node = el('section', `jp-workbench-section ${className}`);
  const heading = el('h3', 'jp-workbench-section-title', title);
  if (count !== undefined) {
    heading.appendChild(el('span', 'jp-workbench-count', ` (${count})`));
  }
  node.appendChild(heading);
  const list = el('ul', 'jp-workbench-list');
  node.appendChild(list);
  return { node, list };
}

function empty(text: string): HTMLLIElement {
  return el('li', 'jp-workbench-empty', text);
}

/** The champion's monitoring in a line or two: its estimated AUC (and realized), its drifted segments. */
export function renderMonitoring(m: IMonitoring): HTMLDivElement {
  const node = el('div', 'jp-workbench-monitoring');
  const e = m.estimate;
  node.dataset.alert = String(
    (e !== null && e.alert) || m.segments.length > 0
  );
  if (e !== null) {
    const real =
      e.realized !== null
        ? `; realized ${e.realized.toFixed(3)} (${e.labelled} labels)`
        : '; no labels yet';
    const text =
      `estimated AUC ${e.auc.toFixed(3)} (${e.lower.toFixed(3)}–${e.upper.toFixed(3)})` +
      ` in ${e.window}, held-out ${e.held_out.toFixed(3)}${real}` +
      (e.alert ? ' — alert' : '');
    node.appendChild(el('div', 'jp-workbench-estimate', text));
  } else {
    node.appendChild(
      el(
        'div',
        'jp-workbench-estimate',
        m.drift_checked
          ? 'performance not estimated yet'
          : 'never checked for drift: no alert means nothing looked'
      )
    );
  }
  if (m.segments.length) {
    node.appendChild(
      el('div', 'jp-workbench-segments', `drifted segments: ${m.segments.join(', ')}`)
    );
  }
  return node;
}

export function renderModel(model: IModelSummary): HTMLLIElement {
  const item = el('li', 'jp-workbench-model');
  item.dataset.model = model.name;

  const header = el('div', 'jp-workbench-model-header');
  header.appendChild(el('span', 'jp-workbench-model-name', model.name));
  header.appendChild(
    el(
      'span',
      'jp-workbench-model-champion',
      model.champion !== null ? `champion v${model.champion}` : 'no champion'
    )
  );
  if (model.challenger !== null) {
    header.appendChild(
      el('span', 'jp-workbench-model-challenger', `challenger v${model.challenger}`)
    );
  }
  item.appendChild(header);

  const state = model.canary.state || 'none';
  const canary = el('div', 'jp-workbench-canary', `canary: ${state}`);
  canary.dataset.state = state;
  item.appendChild(canary);
  if (model.champion !== null) {
    item.appendChild(renderMonitoring(model.monitoring));
  }

  if (model.versions.length) {
    const versions = el('ul', 'jp-workbench-versions');
    for (const v of model.versions) {
      const row = el('li', 'jp-workbench-version');
      row.dataset.version = String(v.version);
      row.appendChild(el('span', 'jp-workbench-version-number', `v${v.version}`));
      for (const alias of v.aliases) {
        const tag = el('span', 'jp-workbench-alias', alias);
        tag.dataset.alias = alias;
        row.appendChild(tag);
      }
      if (v.gates_passed !== null) {
        const gates = el(
          'span',
          `jp-workbench-gates ${v.gates_passed ? 'jp-mod-passed' : 'jp-mod-failed'}`,
          v.gates_passed ? 'gates ✓' : 'gates ✗'
        );
        gates.title = v.gates_passed
          ? 'Passed the promotion gates'
          : 'Failed the promotion gates';
        row.appendChild(gates);
      }
      versions.appendChild(row);
    }
    item.appendChild(versions);
  }
  return item;
}

export function renderRun(run: IRunSummary, checked: boolean): HTMLLIElement {
  const item = el('li', 'jp-workbench-run');
  item.dataset.runId = run.run_id;
  item.title = [
    run.experiment && `experiment: ${run.experiment}`,
    run.status && `status: ${run.status}`,
    run.start_time && `started: ${run.start_time}`,
    `run id: ${run.run_id}`
  ]
    .filter(Boolean)
    .join('\n');

  const label = el('label', 'jp-workbench-run-label');
  const box = el('input', 'jp-workbench-run-select');
  box.type = 'checkbox';
  box.value = run.run_id;
  box.checked = checked;
  box.setAttribute('aria-label', `Select ${run.run_name} for comparison`);
  label.appendChild(box);
  label.appendChild(el('span', 'jp-workbench-run-name', run.run_name));
  const metric = pickMetric(run.metrics);
  if (metric) {
    label.appendChild(
      el('span', 'jp-workbench-run-metric', `${metric[0]} ${formatMetric(metric[1])}`)
    );
  }
  if (run.status && run.status !== 'FINISHED') {
    label.appendChild(
      el('span', 'jp-workbench-run-status', run.status.toLowerCase())
    );
  }
  item.appendChild(label);
  return item;
}

export function renderAlert(alert: IAlert): HTMLLIElement {
  const item = el('li', `jp-workbench-alert jp-workbench-alert-${alert.kind}`);
  item.dataset.kind = alert.kind;
  if (alert.time) {
    item.title = alert.time;
  }
  const header = el('div', 'jp-workbench-alert-header');
  header.appendChild(el('span', 'jp-workbench-alert-kind', alert.kind));
  header.appendChild(el('span', 'jp-workbench-alert-subject', alert.subject));
  item.appendChild(header);
  if (alert.reason) {
    item.appendChild(el('div', 'jp-workbench-alert-reason', alert.reason));
  }
  return item;
}

/**
 * The sidebar's content. An error is shown above the last summary, if any,
 * so a failed refresh does not blank what was there.
 */
export function renderContent(state: IViewState): HTMLElement {
  const root = el('div', 'jp-workbench-body');
  if (state.error) {
    const error = el('div', 'jp-workbench-error', state.error);
    error.setAttribute('role', 'alert');
    root.appendChild(error);
  }
  const summary = state.summary;
  if (!summary) {
    if (!state.error) {
      root.appendChild(el('div', 'jp-workbench-loading', 'Loading…'));
    }
    return root;
  }

  if (summary.workspace) {
    const ws = el('div', 'jp-workbench-workspace', summary.workspace);
    ws.title = `Workspace: ${summary.workspace}`;
    root.appendChild(ws);
  }

  const models = section('Models', 'jp-workbench-models', summary.models.length);
  for (const model of summary.models) {
    models.list.appendChild(renderModel(model));
  }
  if (!summary.models.length) {
    models.list.appendChild(empty('No registered models'));
  }
  root.appendChild(models.node);

  const runs = section('Recent runs', 'jp-workbench-runs', summary.runs.length);
  for (const run of summary.runs) {
    runs.list.appendChild(renderRun(run, state.selected.has(run.run_id)));
  }
  if (!summary.runs.length) {
    runs.list.appendChild(empty('No runs yet'));
  }
  root.appendChild(runs.node);

  const alerts = section('Open alerts', 'jp-workbench-alerts', summary.open_alerts);
  for (const alert of summary.alerts) {
    alerts.list.appendChild(renderAlert(alert));
  }
  if (!summary.alerts.length) {
    alerts.list.appendChild(empty('No open alerts'));
  }
  root.appendChild(alerts.node);
  return root;
}
