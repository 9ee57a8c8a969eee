/**
 * Pure URL helpers: the summary endpoint and the dashboard pages, all
 * relative to the Jupyter base URL.
 */

/** The dashboard pages the extension opens, in the order it lists them. */
export const PAGES = [
  'experiments',
  'registry',
  'drift',
  'serving',
  'data',
  'audit'
] as const;

export type Page = (typeof PAGES)[number];

/** Titles of the pages, as shown on tabs, launcher cards and buttons. */
export const PAGE_TITLES: { [P in Page]: string } = {
  experiments: 'Experiments',
  registry: 'Registry',
  drift: 'Drift',
  serving: 'Serving',
  data: 'Data',
  audit: 'Audit'
};

/** The summary endpoint, relative to the base URL. */
export const SUMMARY_PATH = 'workbench/api/summary';

export function isPage(value: unknown): value is Page {
  return typeof value === 'string' && (PAGES as readonly string[]).includes(value);
}

function isAbsolute(url: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(url);
}

/**
 * Join URL parts with exactly one slash between them. The first part keeps
 * its leading slash or scheme, the last part keeps its trailing slash, and
 * empty parts are skipped.
 */
export function joinUrl(...parts: string[]): string {
  const kept = parts.filter(p => p !== '');
  if (kept.length === 0) {
    return '';
  }
  return kept
    .map((part, i) => {
      let p = part;
      if (i > 0) {
        p = p.replace(/^\/+/, '');
      }
      if (i < kept.length - 1) {
        p = p.replace(/\/+$/, '');
      }
      return p;
    })
    .filter((p, i) => p !== '' || i === 0)
    .join('/');
}

/** The summary endpoint under the given base URL. */
export function summaryUrl(baseUrl: string): string {
  return joinUrl(baseUrl, SUMMARY_PATH);
}

/**
 * The dashboard root: `dashboard` is relative to the base URL, unless the
 * server gave an absolute URL.
 */
export function dashboardUrl(baseUrl: string, dashboard: string): string {
  if (isAbsolute(dashboard)) {
    return dashboard;
  }
  const root = joinUrl(baseUrl, dashboard);
  return root.endsWith('/') ? root : root + '/';
}

/** One dashboard page, e.g. `<base>/workbench-dashboard/drift`. */
export function pageUrl(
  baseUrl: string,
  dashboard: string,
  page: Page,
  query?: { [key: string]: string }
): string {
  const url = dashboardUrl(baseUrl, dashboard) + page;
  const pairs = Object.entries(query ?? {}).map(
    ([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`
  );
  return pairs.length ? `${url}?${pairs.join('&')}` : url;
}

/**
 * The Experiments page comparing the given runs:
 * `<dashboard>experiments?runs=ID,ID` with each id escaped and the commas
 * between them kept literal.
 */
export function compareUrl(
  baseUrl: string,
  dashboard: string,
  runIds: readonly string[]
): string {
  const ids = runIds.map(id => encodeURIComponent(id)).join(',');
  return `${pageUrl(baseUrl, dashboard, 'experiments')}?runs=${ids}`;
}

/** Run ids from a command argument: an array, or a comma-separated string. */
export function parseRunIds(value: unknown): string[] {
  const raw = Array.isArray(value)
    ? value
    : typeof value === 'string'
      ? value.split(',')
      : [];
  const ids: string[] = [];
  for (const item of raw) {
    const id = String(item).trim();
    if (id !== '' && !ids.includes(id)) {
      ids.push(id);
    }
  }
  return ids;
}
