import { LabIcon } from '@jupyterlab/ui-components';

import workbenchSvg from '../style/icons/workbench.svg';
import experimentsSvg from '../style/icons/experiments.svg';
import registrySvg from '../style/icons/registry.svg';
import driftSvg from '../style/icons/drift.svg';
import servingSvg from '../style/icons/serving.svg';
import dataSvg from '../style/icons/data.svg';
import auditSvg from '../style/icons/audit.svg';
import { Page } from './urls';

export const workbenchIcon = new LabIcon({
  name: '@mlops-workbench/jupyterlab:workbench',
  svgstr: workbenchSvg
});

const icon = (page: Page, svgstr: string): LabIcon =>
  new LabIcon({ name: `@mlops-workbench/jupyterlab:${page}`, svgstr });

/** One icon a page, so six launcher cards and tabs tell their pages apart at a glance. */
export const pageIcons: { [P in Page]: LabIcon } = {
  experiments: icon('experiments', experimentsSvg),
  registry: icon('registry', registrySvg),
  drift: icon('drift', driftSvg),
  serving: icon('serving', servingSvg),
  data: icon('data', dataSvg),
  audit: icon('audit', auditSvg)
};
