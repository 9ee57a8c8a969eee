/**
 * The status-bar text: the first model's champion and the open-alert count.
 */
import { ISummary } from './types';

export function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

/** e.g. `credit-default v2 · 2 alerts`. */
export function statusText(summary: ISummary | null, error?: string | null): string {
  if (!summary) {
    return error ? 'Workbench: unavailable' : 'Workbench…';
  }
  const alerts = plural(summary.open_alerts, 'alert');
  const model = summary.models[0];
  if (!model) {
    return `no models · ${alerts}`;
  }
  const champion =
    model.champion !== null ? `v${model.champion}` : 'no champion';
  return `${model.name} ${champion} · ${alerts}`;
}

/** The tooltip of the status-bar item. */
export function statusTitle(summary: ISummary | null, error?: string | null): string {
  if (error) {
    return `MLOps Workbench: ${error}`;
  }
  if (!summary) {
    return 'MLOps Workbench: loading';
  }
  return (
    `MLOps Workbench: ${plural(summary.models.length, 'model')}, ` +
    `${plural(summary.open_alerts, 'open alert')} — click to open the sidebar`
  );
}
