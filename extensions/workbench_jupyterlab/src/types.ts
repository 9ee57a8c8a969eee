/**
 * The shape of `GET workbench/api/summary`, and a tolerant reader for it.
 *
 * Pure: no JupyterLab imports, so jest runs it as is.
 */

/** The canary (or shadow) deployment of a model. */
export interface ICanary {
  /** Share of traffic sent to the challenger, 0..1. */
  share: number;
  /** Human-readable state, e.g. "canary at 10%", "shadow" or "none". */
  state: string;
}

/** One registered version of a model. */
export interface IModelVersion {
  version: number;
  aliases: string[];
  /** Whether the version passed the promotion gates; null when unknown. */
  gates_passed: boolean | null;
}

/** The champion's newest estimated AUC, from its scores alone, with the realized AUC once labels came. */
export interface IEstimate {
  window: string;
  auc: number;
  lower: number;
  upper: number;
  held_out: number;
  alert: boolean;
  realized: number | null;
  labelled: number;
}

/** What monitoring knows of a champion. */
export interface IMonitoring {
  /** Whether its traffic was ever checked for drift: no alert is no news when nothing looked. */
  drift_checked: boolean;
  estimate: IEstimate | null;
  /** The drifted segments of its newest segmented window, e.g. "product=bnpl". */
  segments: string[];
}

/** One registered model. */
export interface IModelSummary {
  name: string;
  champion: number | null;
  challenger: number | null;
  canary: ICanary;
  versions: IModelVersion[];
  monitoring: IMonitoring;
}

/** One tracked run (newest first in the summary). */
export interface IRunSummary {
  run_id: string;
  run_name: string;
  experiment: string;
  status: string;
  start_time: string;
  metrics: { [name: string]: number };
}

/** One open alert. */
export interface IAlert {
  time: string;
  kind: string;
  subject: string;
  reason: string;
}

/** The whole summary. */
export interface ISummary {
  workspace: string;
  models: IModelSummary[];
  runs: IRunSummary[];
  alerts: IAlert[];
  open_alerts: number;
  /** Dashboard root, relative to the Jupyter base URL. */
  dashboard: string;
}

/** Where the dashboard lives when the server has not said yet. */
export const DEFAULT_DASHBOARD = 'workbench-dashboard/';

function str(value: unknown, fallback = ''): string {
  if (typeof value === 'string') {
    return value;
  }
  if (typeof value === 'number' || typeof value === 'boolean') {
    return String(value);
  }
  return fallback;
}

function num(value: unknown): number | null {
  if (typeof value === 'number' && Number.isFinite(value)) {
    return value;
  }
  if (typeof value === 'string' && value.trim() !== '') {
    const parsed = Number(value);
    return Number.isFinite(parsed) ? parsed : null;
  }
  return null;
}

function list(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

function record(value: unknown): { [key: string]: unknown } {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
    ? (value as { [key: string]: unknown })
    : {};
}

function readVersion(raw: unknown): IModelVersion {
  const v = record(raw);
  return {
    version: num(v.version) ?? 0,
    aliases: list(v.aliases).map(a => str(a)).filter(a => a !== ''),
    gates_passed: typeof v.gates_passed === 'boolean' ? v.gates_passed : null
  };
}

function readEstimate(raw: unknown): IEstimate | null {
  const e = record(raw);
  const auc = num(e.auc);
  if (auc === null) {
    return null;
  }
  return {
    window: str(e.window),
    auc,
    lower: num(e.lower) ?? auc,
    upper: num(e.upper) ?? auc,
    held_out: num(e.held_out) ?? auc,
    alert: e.alert === true,
    realized: num(e.realized),
    labelled: num(e.labelled) ?? 0
  };
}

function readMonitoring(raw: unknown): IMonitoring {
  const m = record(raw);
  return {
    drift_checked: m.drift_checked === true,
    estimate: readEstimate(m.estimate),
    segments: list(m.segments).map(s => str(s)).filter(s => s !== '')
  };
}

function readModel(raw: unknown): IModelSummary {
  const m = record(raw);
  const canary = record(m.canary);
  return {
    name: str(m.name, '(unnamed)'),
    champion: num(m.champion),
    challenger: num(m.challenger),
    canary: { share: num(canary.share) ?? 0, state: str(canary.state, 'none') },
    versions: list(m.versions).map(readVersion),
    monitoring: readMonitoring(m.monitoring)
  };
}

function readRun(raw: unknown): IRunSummary {
  const r = record(raw);
  const metrics: { [name: string]: number } = {};
  for (const [key, value] of Object.entries(record(r.metrics))) {
    const n = num(value);
    if (n !== null) {
      metrics[key] = n;
    }
  }
  const runId = str(r.run_id);
  return {
    run_id: runId,
    run_name: str(r.run_name) || runId,
    experiment: str(r.experiment),
    status: str(r.status),
    start_time: str(r.start_time),
    metrics
  };
}

function readAlert(raw: unknown): IAlert {
  const a = record(raw);
  return {
    time: str(a.time),
    kind: str(a.kind, 'alert'),
    subject: str(a.subject),
    reason: str(a.reason)
  };
}

/**
 * Read a summary from parsed JSON, filling in what is missing so the
 * sidebar never has to guard against a partial answer.
 */
export function readSummary(raw: unknown): ISummary {
  const s = record(raw);
  const alerts = list(s.alerts).map(readAlert);
  return {
    workspace: str(s.workspace),
    models: list(s.models).map(readModel),
    runs: list(s.runs)
      .map(readRun)
      .filter(r => r.run_id !== ''),
    alerts,
    open_alerts: num(s.open_alerts) ?? alerts.length,
    dashboard: str(s.dashboard) || DEFAULT_DASHBOARD
  };
}
