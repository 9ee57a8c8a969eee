import { LabIcon } from '@jupyterlab/ui-components';

import workbenchSvg from '../style/icons/workbench.svg';

export const workbenchIcon = new LabIcon({
  name: '@mlops-workbench/jupyterlab:workbench',
  svgstr: workbenchSvg
});
