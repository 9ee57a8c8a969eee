"Feature views: no leakage on random timelines, online equals offline, and a served request carrying only an entity key."
import json, subprocess
import httpx, numpy as np, pandas as pd, pytest
from conftest import BIN, clean_env, free_port, started

NOW = pd.Timestamp.now(tz='UTC').floor('s')


def timeline(rng, customers:int, rows:int, days:int=120) -> pd.DataFrame:
    "Payments at random times (no two of one customer at the same time), some amounts missing."
    t = NOW - pd.to_timedelta(rng.integers(0, days * 86400, rows), unit='s')
    df = pd.DataFrame({'customer': [f'c{i}' for i in rng.integers(0, customers, rows)], 'paid_at': t,
                       'amount': np.round(rng.gamma(2, 40, rows), 2), 'channel': rng.choice(['card', 'transfer', 'cash'], rows)})
    df.loc[rng.random(rows) < 0.05, 'amount'] = np.nan
    return df.drop_duplicates(['customer', 'paid_at']).reset_index(drop=True)


def entity_rows(rng, n:int, customers:int=60, days:int=100) -> pd.DataFrame:
    "Customers at random times in the last `days` days."
    return pd.DataFrame({'customer': [f'c{i}' for i in rng.integers(0, customers, n)],
                         'event_timestamp': NOW - pd.to_timedelta(rng.integers(0, days * 86400, n), unit='s')})


@pytest.fixture(scope='module')
def fs(tmp_path_factory):
    "A workspace with two views over Parquet sources: payments (TTL 30 days) and profiles (no TTL)."
    from workbench import features as F
    from workbench.config import load_settings
    from workbench.workspace import open_workspace
    root = tmp_path_factory.mktemp('features')
    ws = open_workspace(root/'ws', load_settings(env={}))
    rng = np.random.default_rng(7)
    pay = timeline(rng, 60, 3000)
    pay.to_parquet(root/'payments.parquet')
    prof = pd.DataFrame({'customer': [f'c{i}' for i in range(60)], 'updated_at': NOW - pd.Timedelta(days=200), 'age': rng.integers(18, 80, 60).astype(float),
                         'segment': rng.choice(['retail', 'sme'], 60)})
    prof.to_parquet(root/'profiles.parquet')
    views = [F.FeatureView('payments', 'customer', 'paid_at', str(root/'payments.parquet'),
                           {'amount': 'amount', 'amount_log': 'ln(1 + amount)', 'by_card': "(channel = 'card')::int"}, ttl='30d'),
             F.FeatureView('profiles', 'customer', 'updated_at', str(root/'profiles.parquet'), {'age': 'age', 'segment': 'segment'})]
    F.apply(ws, views)
    return ws, root, pay, prof


def test_no_leakage_on_random_timelines(fs):
    "Each entity row gets the value of the latest payment at or before its time and within 30 days, checked against a plain scan."
    from workbench import features as F
    ws, root, pay, prof = fs
    rng = np.random.default_rng(1)
    ents = pd.DataFrame({'customer': [f'c{i}' for i in rng.integers(0, 70, 2000)],  # c60..c69 have no payments
                         'event_timestamp': NOW - pd.to_timedelta(rng.integers(-5 * 86400, 130 * 86400, 2000), unit='s')})
    ents['event_timestamp'] = pd.concat([pay.paid_at[:21], ents.event_timestamp[21:]], ignore_index=True)  # exactly at a payment's time:
    ents.loc[:20, 'customer'] = pay.customer[:21].tolist()                                                 # that payment counts
    fr = F.get_training_frame(ws, ents, ['payments', 'profiles'])
    assert len(fr) == len(ents) and fr.customer.tolist() == ents.customer.tolist()  # the entity rows, in their order
    by = {c: g.sort_values('paid_at') for c, g in pay.groupby('customer')}
    for i, e in ents.iterrows():
        g = by.get(e.customer)
        past = g[g.paid_at <= e.event_timestamp] if g is not None else pd.DataFrame()
        want = past.amount.iloc[-1] if len(past) and past.paid_at.iloc[-1] >= e.event_timestamp - pd.Timedelta(days=30) else None
        got = fr.amount[i]
        assert (want is None or pd.isna(want)) and pd.isna(got) or want == got, (i, e.to_dict(), want, got)
    # never a value from the future: every value given is some payment's at or before the row's time
    assert fr.amount.notna().sum() > 500 and fr.age.notna().sum() == (ents.customer.isin(prof.customer)).sum()
    assert fr.attrs['feature_views'] == {'payments': 1, 'profiles': 1}


def test_bad_references_and_entities_are_refused(fs):
    from workbench import features as F
    from workbench.config import WorkbenchError
    ws, *_ = fs
    ents = pd.DataFrame({'customer': ['c1'], 'event_timestamp': [NOW]})
    for args, message in [((ents, ['nope']), "no feature view 'nope'"), ((ents, ['payments:nope']), "has no feature 'nope'"),
                          ((ents, ['payments@9']), 'version 9'), ((ents, ['pay ments']), 'not a feature reference'),
                          ((ents.rename(columns={'customer': 'client'}), ['payments']), "no key column 'customer'"),
                          ((ents.assign(event_timestamp='yesterday'), ['payments']), 'not times'),
                          ((ents.drop(columns='event_timestamp'), ['payments']), "no time column 'event_timestamp'")]:
        with pytest.raises(WorkbenchError, match=message): F.get_training_frame(ws, *args)


def test_online_equals_offline(fs):
    "Materialized now, every entity's online values equal the training frame's at the same time; check-skew agrees."
    from workbench import features as F
    ws, root, pay, prof = fs
    m = F.materialize(ws, as_of=NOW)
    assert set(m.view) == {'payments', 'profiles'}
    ents = pd.DataFrame({'customer': [f'c{i}' for i in range(70)]})
    online = F.get_online_features(ws, ents, ['payments', 'profiles'], at=NOW)
    offline = F.get_training_frame(ws, ents.assign(event_timestamp=NOW), ['payments', 'profiles'])
    for c in ['amount', 'amount_log', 'by_card', 'age', 'segment']:
        a, b = offline[c].astype(object).where(offline[c].notna(), None).tolist(), online[c].astype(object).where(online[c].notna(), None).tolist()
        assert a == b, c
    sk = F.check_skew(ws, sample=100)
    assert sk.differing.tolist() == [0, 0] and sk.entities.sum() > 60
    r = subprocess.run([str(BIN/'workbench'), '-w', str(ws.root), 'features', 'check-skew'], capture_output=True, text=True, timeout=120,
                       env=clean_env())
    assert r.returncode == 0 and 'payments' in r.stdout, r.stderr


def test_served_request_with_only_an_entity_key(fs):
    "A model trained on a frame from feature views, served: a request with only customer ids scores as the same rows offline."
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder
    from workbench import data, features as F, onnx, registry, tracking
    from workbench.deployed import OnnxModel
    ws, root, pay, prof = fs
    rng = np.random.default_rng(3)
    frame = F.get_training_frame(ws, entity_rows(rng, 3000), ['payments', 'profiles'])
    frame['churned'] = ((frame.amount.fillna(0) < 60) ^ (rng.random(len(frame)) < 0.1)).astype(int)
    feats = ['amount', 'amount_log', 'by_card', 'age', 'segment']
    data.commit(ws, 'churn_frame', frame, 'a training frame built from feature views')
    with tracking.start_run(ws, 'churn', 'churn_frame@latest', feats, 'churned') as run:
        num = ['amount', 'amount_log', 'by_card', 'age']
        pipe = make_pipeline(ColumnTransformer([('n', SimpleImputer(strategy='median'), num), ('c', OneHotEncoder(handle_unknown='ignore'), ['segment'])]),
                             LogisticRegression(max_iter=500)).fit(run.X, run.y)
        F.log_views(frame)
        exported = onnx.export(pipe, run.X, settings=ws.settings)
        registry.log_candidate(ws, run.run_id, exported)
    mv = registry.register(ws, run.run_id, 'churn')
    assert mv.feature_views == {'payments': 1, 'profiles': 1}
    F.materialize(ws)
    url = f'http://127.0.0.1:{free_port()}'
    with started([BIN/'workbench', '-w', ws.root, 'serve', 'churn/1', '--port', url.rsplit(':', 1)[1]], f'{url}/ping', env=clean_env(),
                 log=root/'serve-churn.log'):
        who = [f'c{i}' for i in range(0, 60, 3)]
        r = httpx.post(f'{url}/invocations', json={'dataframe_records': [{'customer': c} for c in who], 'params': {'predict_method': 'predict_proba'}}, timeout=30)
        assert r.status_code == 200, r.text
        served = np.array(r.json()['predictions'])[:, 1]
        # the same rows offline: the training frame now, scored with the registered ONNX model
        offline = F.get_training_frame(ws, pd.DataFrame({'customer': who, 'event_timestamp': pd.Timestamp.now(tz='UTC')}), ['payments', 'profiles'])
        model = OnnxModel(registry.load_onnx(ws, 'churn/1')[0])
        assert np.abs(model.predict_proba(offline[feats])[:, 1] - served).max() < 1e-9
        # without the key, the server cannot look the features up: the client's error, naming the key
        r = httpx.post(f'{url}/invocations', json={'dataframe_records': [{'client': 'c1'}]}, timeout=30)
        assert r.status_code == 400 and 'customer' in r.text


def test_training_pipeline_builds_its_frame_from_feature_views(fs):
    "pipelines/train.ipynb with feature_views: the frame is joined point in time, committed, and its runs record the views."
    from workbench import data, pipelines, registry
    ws, root, pay, prof = fs
    rng = np.random.default_rng(5)
    rows = entity_rows(rng, 1500)
    rows['churned'] = (rng.random(1500) < 0.3).astype(int)
    data.commit(ws, 'churn_rows', rows, 'entity rows with their label')
    r = pipelines.run(ws, 'train', dict(dataset='churn_rows', target='churned', keys='customer', sensitive=None, exclude=None,
                                        feature_views='payments,profiles:age', models='logistic', experiment='churn-pipeline'))
    assert r.ok, r.message
    assert r.results['features'] == ['amount', 'amount_log', 'by_card', 'age'] and r.results['dataset'].startswith('churn_rows_features@')
    tags = registry.client(ws).get_run(r.results['run_id']).data.tags
    assert json.loads(tags['workbench.feature_views']) == {'payments': 1, 'profiles': 1}
    frame = data.load(ws, r.results['dataset'])
    assert len(frame) == 1500 and frame.amount.notna().sum() > 500


def test_cli(tmp_path):
    "workbench features apply|list|show|materialize|check-skew on a file of views, and its refusals."
    rng = np.random.default_rng(2)
    timeline(rng, 10, 200).to_parquet(tmp_path/'payments.parquet')
    (tmp_path/'views.py').write_text(f"from workbench.features import FeatureView\n"
                                     f"payments = FeatureView('payments', 'customer', 'paid_at', {str(tmp_path/'payments.parquet')!r}, {{'amount': 'amount'}}, ttl='30d')\n")
    env = clean_env()
    run = lambda *a: subprocess.run([str(BIN/'workbench'), '-w', str(tmp_path/'ws'), 'features', *map(str, a)], env=env, capture_output=True, text=True, timeout=120)
    r = run('apply', tmp_path/'views.py'); assert r.returncode == 0 and 'created' in r.stdout, r.stderr
    r = run('apply', tmp_path/'views.py'); assert 'unchanged' in r.stdout
    r = run('list'); assert 'payments' in r.stdout and '30d' in r.stdout
    r = run('show', 'payments'); assert json.loads(r.stdout)['features'] == {'amount': {'sql': 'amount'}}
    r = run('materialize'); assert r.returncode == 0 and 'online/payments/1-' in r.stdout, r.stderr
    r = run('check-skew'); assert r.returncode == 0, r.stderr
    (tmp_path/'broken.py').write_text("this is not python\n")
    (tmp_path/'empty.py').write_text("x = 1\n")
    (tmp_path/'badsql.py').write_text((tmp_path/'views.py').read_text().replace("'amount'}", "'amount +* 1'}"))
    for args, message in [(('apply', tmp_path/'broken.py'), 'failed to run'), (('apply', tmp_path/'empty.py'), 'defines no FeatureView'),
                          (('apply', tmp_path/'badsql.py'), 'does not compile'), (('show', 'nope'), "no feature view 'nope'"),
                          (('apply', tmp_path/'missing.py'), 'missing.py')]:
        r = run(*args)
        assert r.returncode != 0 and message in r.stderr and 'Traceback' not in r.stderr, (args, r.stderr)
    assert json.loads(run('show', 'payments').stdout)['version'] == 1  # nothing refused was stored
