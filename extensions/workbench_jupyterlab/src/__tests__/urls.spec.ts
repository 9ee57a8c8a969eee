import {
  compareUrl,
  dashboardUrl,
  isPage,
  joinUrl,
  pageUrl,
  PAGES,
  parseRunIds,
  summaryUrl
} from '../urls';

describe('joinUrl', () => {
  it('joins with exactly one slash', () => {
    expect(joinUrl('/', 'workbench/api/summary')).toBe('/workbench/api/summary');
    expect(joinUrl('/user/ana/', '/workbench/', 'dashboard/')).toBe(
      '/user/ana/workbench/dashboard/'
    );
    expect(joinUrl('http://localhost:8888/lab-base/', 'workbench/api/summary')).toBe(
      'http://localhost:8888/lab-base/workbench/api/summary'
    );
    expect(joinUrl('http://localhost:8888', 'a')).toBe('http://localhost:8888/a');
  });

  it('skips empty parts and keeps a trailing slash', () => {
    expect(joinUrl('', '/base/', '', 'x/')).toBe('/base/x/');
    expect(joinUrl()).toBe('');
  });
});

describe('summaryUrl', () => {
  it('is relative to the base URL', () => {
    expect(summaryUrl('http://127.0.0.1:8888/')).toBe(
      'http://127.0.0.1:8888/workbench/api/summary'
    );
    expect(summaryUrl('/user/bob/')).toBe('/user/bob/workbench/api/summary');
  });
});

describe('pageUrl', () => {
  it('builds every page under the dashboard', () => {
    for (const page of PAGES) {
      expect(pageUrl('http://h:8888/', 'workbench-dashboard/', page)).toBe(
        `http://h:8888/workbench-dashboard/${page}`
      );
    }
  });

  it('works with or without slashes around the dashboard', () => {
    expect(pageUrl('/base', 'workbench-dashboard', 'drift')).toBe(
      '/base/workbench-dashboard/drift'
    );
    expect(pageUrl('/base/', '/workbench-dashboard/', 'audit')).toBe(
      '/base/workbench-dashboard/audit'
    );
  });

  it('keeps an absolute dashboard URL', () => {
    expect(dashboardUrl('/base/', 'https://dash.example.org/wb/')).toBe(
      'https://dash.example.org/wb/'
    );
    expect(pageUrl('/base/', 'https://dash.example.org/wb/', 'serving')).toBe(
      'https://dash.example.org/wb/serving'
    );
  });

  it('escapes query values', () => {
    expect(pageUrl('/', 'workbench-dashboard/', 'registry', { model: 'a b&c' })).toBe(
      '/workbench-dashboard/registry?model=a%20b%26c'
    );
  });
});

describe('compareUrl', () => {
  it('lists the run ids comma-separated', () => {
    expect(compareUrl('http://h/', 'workbench-dashboard/', ['a1b2', 'c3d4'])).toBe(
      'http://h/workbench-dashboard/experiments?runs=a1b2,c3d4'
    );
  });

  it('escapes each id but not the separating commas', () => {
    expect(compareUrl('/', 'workbench-dashboard/', ['x,y', 'a b', 'c/d&e'])).toBe(
      '/workbench-dashboard/experiments?runs=x%2Cy,a%20b,c%2Fd%26e'
    );
  });
});

describe('parseRunIds and isPage', () => {
  it('reads arrays and comma-separated strings, deduplicated', () => {
    expect(parseRunIds(['a', ' b ', 'a', ''])).toEqual(['a', 'b']);
    expect(parseRunIds('a,b , c')).toEqual(['a', 'b', 'c']);
    expect(parseRunIds(undefined)).toEqual([]);
    expect(parseRunIds(42)).toEqual([]);
  });

  it('knows the pages', () => {
    expect(isPage('drift')).toBe(true);
    expect(isPage('nope')).toBe(false);
    expect(isPage(undefined)).toBe(false);
  });
});
