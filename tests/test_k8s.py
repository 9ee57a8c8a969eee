"Issue 21: `workbench deploy k8s REF` writes Kubernetes manifests for a registered version, valid as Kubernetes, KEDA and KServe define them."
import copy, os, re, subprocess, sys
from pathlib import Path
import kubernetes_validate
import pydantic
import pytest
import yaml
from click.testing import CliRunner
from cloudcoil.models.keda.v1alpha1 import ScaledObject
from sklearn.linear_model import LogisticRegression
from conftest import clean_env
from workbench import data, demo, onnx, registry, tracking
from workbench.cli import cli
from workbench.config import load_settings
from workbench.workspace import open_workspace

BIN = Path(sys.executable).parent
IMAGE = 'registry.example.com/credit-default:1'
# The oldest Kubernetes with the preStop `sleep` action on by default, and the newest whose schemas kubernetes-validate ships
VERSIONS = ('1.30', kubernetes_validate.latest_version())
CORE = ('deployment.yaml', 'hpa.yaml', 'prometheus-adapter/rules.yaml')  # Kubernetes' own kinds
# KServe's ComponentExtensionSpec fields (pkg/apis/serving/v1beta1/component.go) and their types; the rest of
# spec.predictor is a Kubernetes PodSpec, inlined
KSERVE_EXTENSION = {'minReplicas': int, 'maxReplicas': int, 'scaleTarget': int, 'scaleMetric': str, 'containerConcurrency': int,
                    'timeout': int, 'canaryTrafficPercent': int, 'logger': dict, 'batcher': dict, 'labels': dict,
                    'annotations': dict, 'deploymentStrategy': dict}


@pytest.fixture(scope='module')
def home(tmp_path_factory):
    "A workspace with one registered version, credit-default/1: a logistic regression on two columns."
    ws = open_workspace(tmp_path_factory.mktemp('home')/'ws', load_settings(env={}))
    credit = data.commit(ws, 'credit', demo.training_frame(demo.generate(months=1, rows_per_month=300), 1), 'one month', 'ana')
    frame, features = data.load(ws, credit.ref), ['income', 'credit_score']
    with tracking.start_run(ws, 'credit-default', credit.ref, features, 'defaulted') as run:
        model = LogisticRegression().fit(frame[features].fillna(0)[:200], frame.defaulted[:200])
        registry.log_candidate(ws, run.run_id, onnx.export(model, frame[features].fillna(0)[200:]))
    registry.register(ws, run.run_id, 'credit-default', actor='ci-pipeline')
    return ws


@pytest.fixture(scope='module')
def out(home):
    "The folder where the installed `workbench deploy k8s` wrote the manifests of credit-default/1."
    folder = home.root.parent/'k8s'
    r = subprocess.run([str(BIN/'workbench'), 'deploy', 'k8s', 'credit-default/1', str(folder), '--image', IMAGE],
                       cwd=home.root.parent, env=clean_env(WORKBENCH_HOME=str(home.root), WORKBENCH_ACTOR='tester'),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f'Wrote Kubernetes manifests for credit-default/1 served by {IMAGE} into {folder}: '), r.stdout
    return folder


def objects(folder:Path, name:str) -> list: return [o for o in yaml.safe_load_all((folder/name).read_text()) if o]


def check_core(obj:dict):
    "Validate `obj` against the Kubernetes OpenAPI schemas, strictly (an unknown field fails), for each of `VERSIONS`."
    for version in VERSIONS: kubernetes_validate.validate(obj, version, strict=True)


def check_keda(obj:dict):
    "Validate a ScaledObject against KEDA's typed models, strictly: the model must hold every field, unchanged."
    assert obj['apiVersion'] == 'keda.sh/v1alpha1' and obj['kind'] == 'ScaledObject'
    parsed = ScaledObject.model_validate(obj).model_dump(by_alias=True, exclude_none=True, mode='json')
    assert parsed == obj, 'a field is unknown to KEDA or of the wrong type'
    assert obj['spec']['scaleTargetRef']['name'] and obj['spec']['triggers']


def check_kserve(obj:dict):
    "Check an InferenceService's required fields explicitly, and its predictor's pod spec against Kubernetes' Pod schema."
    assert (obj['apiVersion'], obj['kind']) == ('serving.kserve.io/v1beta1', 'InferenceService')
    assert re.fullmatch(r'[a-z]([-a-z0-9]*[a-z0-9])?', obj['metadata']['name'])  # KServe's rule for its names
    assert set(obj['spec']) == {'predictor'}
    predictor = obj['spec']['predictor']
    for key, kind in KSERVE_EXTENSION.items():
        if key in predictor: assert isinstance(predictor[key], kind), key
    assert predictor.get('scaleMetric', 'concurrency') in ('cpu', 'memory', 'concurrency', 'rps')
    assert 0 <= predictor.get('minReplicas', 1) <= predictor.get('maxReplicas', 1) or not predictor.get('maxReplicas')
    pod_spec = {k: v for k, v in predictor.items() if k not in KSERVE_EXTENSION}
    server = next(c for c in pod_spec['containers'] if c['name'] == 'kserve-container')  # the predictor KServe routes to
    assert {'name': 'PROTOCOL', 'value': 'v2'} in server['env']
    assert not {'lifecycle', 'startupProbe'} & set(server)  # Knative, under KServe's Serverless mode, refuses them
    check_core({'apiVersion': 'v1', 'kind': 'Pod', 'metadata': {'name': obj['metadata']['name']}, 'spec': pod_spec})


def test_files(out):
    "The core manifests at the top (what `kubectl apply -f DIR` applies), the adapter rule and the alternatives below."
    assert sorted(str(p.relative_to(out)) for p in out.rglob('*')) == [
        'deployment.yaml', 'hpa.yaml', 'keda', 'keda/scaledobject.yaml', 'kserve', 'kserve/inferenceservice.yaml',
        'prometheus-adapter', 'prometheus-adapter/rules.yaml']
    assert 'never both' in (out/'keda'/'scaledobject.yaml').read_text().split('---')[0]


@pytest.mark.parametrize('name', CORE)
def test_core_manifests_are_valid(out, name):
    for obj in objects(out, name): check_core(obj)


def test_keda_scaled_object_is_valid(out):
    [so] = objects(out, 'keda/scaledobject.yaml')
    check_keda(so)
    trigger = so['spec']['triggers'][0]
    assert (trigger['type'], trigger['metricType'], trigger['metadata']['threshold']) == ('prometheus', 'AverageValue', '2')
    assert trigger['metadata']['query'].startswith('sum(rate(workbench_queue_seconds_total{')


def test_kserve_inference_service_is_valid(out):
    [isvc] = objects(out, 'kserve/inferenceservice.yaml')
    check_kserve(isvc)
    [server] = isvc['spec']['predictor']['containers']
    assert server['image'] == IMAGE


def test_what_the_manifests_say(out):
    "The Deployment runs the image safely and stops gracefully; the Service, budget and autoscaler point at it."
    deployment, svc, pdb = objects(out, 'deployment.yaml')
    [hpa], [adapter] = objects(out, 'hpa.yaml'), objects(out, 'prometheus-adapter/rules.yaml')
    pod = deployment['spec']['template']['spec']
    [server] = pod['containers']
    assert server['image'] == IMAGE and server['securityContext']['readOnlyRootFilesystem'] is True
    assert (server['readinessProbe']['httpGet']['path'], server['livenessProbe']['httpGet']['path']) == ('/v2/health/ready', '/v2/health/live')
    assert pod['terminationGracePeriodSeconds'] > server['lifecycle']['preStop']['sleep']['seconds'] + 30
    assert svc['spec']['selector'] == pdb['spec']['selector']['matchLabels'] == deployment['spec']['selector']['matchLabels']
    assert hpa['spec']['scaleTargetRef']['name'] == deployment['metadata']['name']
    [rule] = yaml.safe_load(adapter['data']['config.yaml'])['rules']
    assert rule['name']['as'] == hpa['spec']['metrics'][0]['pods']['metric']['name'] == 'workbench_queue_depth'
    assert deployment['metadata']['annotations']['workbench/model-ref'] == 'credit-default/1'


def broken(obj:dict, path:str, value) -> dict:
    "A copy of `obj` with `value` set at the dotted `path` (numbers index lists)."
    obj = copy.deepcopy(obj)
    *parents, last = [int(p) if p.isdigit() else p for p in path.split('.')]
    target = obj
    for p in parents: target = target[p]
    target[last] = value
    return obj


@pytest.mark.parametrize('name, check, path, value', [
    ('deployment.yaml', check_core, 'spec.template.spec.containers.0.securityContext.readOnlyRootFileSystem', True),  # a typo
    ('deployment.yaml', check_core, 'spec.template.spec.containers.0.ports.0.containerPort', '8080'),  # a string
    ('hpa.yaml', check_core, 'spec.behavior.scaleUp.policies.0.periodSeconds', '15'),
    ('keda/scaledobject.yaml', check_keda, 'spec.triggers.0.metadata.threshold', 2),  # KEDA's metadata holds strings
    ('keda/scaledobject.yaml', check_keda, 'spec.scaleTargetRef.deploymentName', 'credit-default'),  # KEDA 1's field
    ('kserve/inferenceservice.yaml', check_kserve, 'spec.predictor.containers.0.lifecycle', {'preStop': {'sleep': {'seconds': 5}}}),
    ('kserve/inferenceservice.yaml', check_kserve, 'spec.predictor.containers.0.securityContext.runAsUser', 'nobody'),
    ('kserve/inferenceservice.yaml', check_kserve, 'spec.predictor.minReplicas', '2'),
])
def test_a_broken_manifest_fails(out, name, check, path, value):
    "Each check rejects a manifest broken in a way Kubernetes, KEDA or KServe would reject."
    obj = objects(out, name)[0]
    check(obj)
    with pytest.raises((kubernetes_validate.ValidationError, pydantic.ValidationError, AssertionError)):
        check(broken(obj, path, value))


def test_cli_errors(home, out, monkeypatch):
    "A wrong REF or a folder that is not empty: one sentence, exit code 1, nothing written (in this process, where MLflow is loaded)."
    root = home.root.parent
    monkeypatch.chdir(root)
    env = {k: None for k in os.environ if k.startswith('WORKBENCH_')} | {'WORKBENCH_HOME': str(home.root)}
    deploy = lambda *args: CliRunner().invoke(cli, ['deploy', 'k8s', *map(str, args)], env=env)
    r = deploy('nope/1', root/'never')
    assert (r.exit_code, r.stderr) == (1, "Error: no registered model named 'nope'\n")
    assert not (root/'never').exists() and not list(root.glob('.never.*'))
    r = deploy('credit-default/1', out)
    assert (r.exit_code, r.stderr) == (1, f"Error: {out} is not empty; give a new or empty folder for the manifests\n")
