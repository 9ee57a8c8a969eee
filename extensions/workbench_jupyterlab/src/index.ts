/**
 * MLOps Workbench in JupyterLab: a sidebar of models, runs and alerts, the
 * workbench dashboards in main-area tabs, launcher cards, palette commands
 * and a status-bar item.
 */
import {
  ILabShell,
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  ICommandPalette,
  IFrame,
  MainAreaWidget,
  Notification,
  ToolbarButton,
  WidgetTracker
} from '@jupyterlab/apputils';
import { ILauncher } from '@jupyterlab/launcher';
import { ServerConnection } from '@jupyterlab/services';
import { IStatusBar } from '@jupyterlab/statusbar';
import { launchIcon, refreshIcon } from '@jupyterlab/ui-components';

import { fetchSummary } from './api';
import { pageIcons, workbenchIcon } from './icon';
import { WorkbenchModel } from './model';
import { SIDEBAR_ID, WorkbenchSidebar } from './sidebar';
import { WorkbenchStatus } from './statusitem';
import {
  compareUrl,
  isPage,
  Page,
  PAGES,
  PAGE_TITLES,
  pageUrl,
  parseRunIds
} from './urls';

export { SIDEBAR_ID };

const PLUGIN_ID = '@mlops-workbench/jupyterlab:plugin';
const CATEGORY = 'MLOps Workbench';

/** Command ids. */
export namespace CommandIDs {
  /** Open a page given as `args.page` (and `args.runs` to compare); used to restore tabs. */
  export const openDashboard = 'workbench:open-dashboard';
  export const compareRuns = 'workbench:compare-runs';
  export const refresh = 'workbench:refresh';
  export const showSidebar = 'workbench:show-sidebar';
  export function openPage(page: Page): string {
    return `workbench:open-${page}`;
  }
}

/** A main-area tab holding one dashboard page. */
class DashboardPanel extends MainAreaWidget<IFrame> {
  constructor(page: Page, runs: string[]) {
    const content = new IFrame({
      sandbox: ['allow-scripts', 'allow-same-origin', 'allow-forms']
    });
    content.addClass('jp-workbench-iframe');
    super({ content });
    this.page = page;
    this.runs = runs;
    this.addClass('jp-workbench-dashboard');
    this.title.icon = pageIcons[page];
    this.title.closable = true;
  }

  page: Page;
  runs: string[];
}

/** Where the tab's frame is now (it may have navigated), else where it started. */
function currentUrl(panel: DashboardPanel): string {
  try {
    const frame = panel.content.node.querySelector('iframe');
    const href = frame?.contentWindow?.location.href;
    if (href && href !== 'about:blank') {
      return href;
    }
  } catch {
    // not same-origin: fall back to the url it was opened with
  }
  return panel.content.url;
}

function panelId(page: Page, compare: boolean): string {
  return `workbench-dashboard-${page}${compare ? '-compare' : ''}`;
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description:
    'MLOps Workbench: models, runs, alerts and the workbench dashboards in JupyterLab.',
  autoStart: true,
  optional: [ICommandPalette, ILauncher, IStatusBar, ILayoutRestorer, ILabShell],
  activate: (
    app: JupyterFrontEnd,
    palette: ICommandPalette | null,
    launcher: ILauncher | null,
    statusBar: IStatusBar | null,
    restorer: ILayoutRestorer | null,
    labShell: ILabShell | null
  ) => {
    const { commands, shell } = app;
    const settings = ServerConnection.makeSettings();
    const model = new WorkbenchModel(() => fetchSummary(settings));

    // ---- dashboard tabs -------------------------------------------------
    const tracker = new WidgetTracker<DashboardPanel>({ namespace: 'workbench-dashboard' });

    const openDashboard = (page: Page, runs: string[] = []): DashboardPanel => {
      const compare = runs.length > 0;
      const url = compare
        ? compareUrl(settings.baseUrl, model.dashboard, runs)
        : pageUrl(settings.baseUrl, model.dashboard, page);
      const id = panelId(page, compare);
      let panel = tracker.find(w => w.id === id);
      if (!panel || panel.isDisposed) {
        panel = new DashboardPanel(page, runs);
        panel.id = id;
        panel.title.label = compare
          ? 'Workbench: Compare runs'
          : `Workbench: ${PAGE_TITLES[page]}`;
        const current = panel;
        panel.toolbar.addItem(
          'reload',
          new ToolbarButton({
            icon: refreshIcon,
            tooltip: 'Reload the page',
            onClick: () => {
              current.content.url = current.content.url;
            }
          })
        );
        panel.toolbar.addItem(
          'open-in-browser',
          new ToolbarButton({
            icon: launchIcon,
            tooltip: 'Open the page in a new browser tab',
            onClick: () => {
              window.open(currentUrl(current), '_blank', 'noopener');
            }
          })
        );
        panel.content.url = url;
        void tracker.add(panel);
        shell.add(panel, 'main');
      } else if (compare && panel.content.url !== url) {
        // a new comparison replaces the one shown
        panel.runs = runs;
        panel.content.url = url;
        void tracker.save(panel);
      }
      panel.title.caption = url;
      shell.activateById(panel.id);
      return panel;
    };

    commands.addCommand(CommandIDs.openDashboard, {
      label: args =>
        isPage(args.page) ? `Workbench: ${PAGE_TITLES[args.page]}` : 'Workbench: Dashboard',
      icon: workbenchIcon,
      execute: args => {
        const page = isPage(args.page) ? args.page : 'experiments';
        return openDashboard(page, parseRunIds(args.runs));
      }
    });

    for (const page of PAGES) {
      const title = PAGE_TITLES[page];
      commands.addCommand(CommandIDs.openPage(page), {
        label: args => (args.isLauncher ? title : `Open Workbench ${title}`),
        caption: `Open the workbench ${title} dashboard in a tab`,
        icon: pageIcons[page],
        execute: () => openDashboard(page)
      });
    }

    // ---- sidebar and status bar -----------------------------------------
    const compare = (runs: string[]): DashboardPanel | null => {
      if (runs.length < 2) {
        Notification.warning(
          'Tick at least two runs under "Recent runs" in the Workbench sidebar to compare them.',
          { autoClose: 5000 }
        );
        return null;
      }
      return openDashboard('experiments', runs);
    };

    const sidebar = new WorkbenchSidebar({
      model,
      openPage: page => void commands.execute(CommandIDs.openPage(page)),
      compare: () => void commands.execute(CommandIDs.compareRuns)
    });
    shell.add(sidebar, 'left', { rank: 650 });

    commands.addCommand(CommandIDs.compareRuns, {
      label: 'Compare Ticked Workbench Runs',
      caption: 'Open the Experiments page comparing the runs ticked in the Workbench sidebar',
      icon: workbenchIcon,
      execute: args => {
        const given = parseRunIds(args.runs);
        return compare(given.length ? given : model.selectedRunIds);
      }
    });

    commands.addCommand(CommandIDs.refresh, {
      label: 'Refresh Workbench Summary',
      icon: refreshIcon,
      execute: () => model.refresh()
    });

    commands.addCommand(CommandIDs.showSidebar, {
      label: 'Show Workbench Sidebar',
      icon: workbenchIcon,
      execute: () => {
        if (labShell) {
          labShell.expandLeft();
        }
        shell.activateById(SIDEBAR_ID);
      }
    });

    if (statusBar) {
      const item = new WorkbenchStatus(model, () => {
        void commands.execute(CommandIDs.showSidebar);
      });
      statusBar.registerStatusItem(`${PLUGIN_ID}:status`, {
        item,
        align: 'left',
        rank: 100
      });
    }

    // ---- palette, launcher, restorer ------------------------------------
    if (palette) {
      for (const page of PAGES) {
        palette.addItem({ command: CommandIDs.openPage(page), category: CATEGORY });
      }
      for (const command of [CommandIDs.compareRuns, CommandIDs.refresh, CommandIDs.showSidebar]) {
        palette.addItem({ command, category: CATEGORY });
      }
    }

    if (launcher) {
      PAGES.forEach((page, rank) => {
        launcher.add({
          command: CommandIDs.openPage(page),
          category: CATEGORY,
          rank,
          args: { isLauncher: true }
        });
      });
    }

    if (restorer) {
      restorer.add(sidebar, SIDEBAR_ID);
      void restorer.restore(tracker, {
        command: CommandIDs.openDashboard,
        args: panel => ({ page: panel.page, runs: panel.runs }),
        name: panel => panel.id
      });
    }

    // the status bar needs a first summary even while the sidebar is closed; and once the workspace answers, the
    // dashboard process starts in the background, so the first page opened does not wait ~10 s for it
    let warmed = false;
    model.changed.connect(() => {
      if (warmed || model.summary === null) {
        return;
      }
      warmed = true;
      void fetch(pageUrl(settings.baseUrl, model.dashboard, 'audit'), {
        credentials: 'same-origin'
      }).catch(() => undefined);
    });
    void app.started.then(() => model.refresh());
  }
};

export default plugin;
