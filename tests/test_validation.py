"Data validation: no drift passes, drift and broken data fail naming column, check, value and threshold; random splits pass at any size."
import json
from functools import lru_cache
import numpy as np, pandas as pd
import pytest
from workbench import audit, data, demo, suites, tables, validation as val
from workbench.config import WorkbenchError, load_settings, render_settings
from workbench.workspace import open_workspace

DRIFT_FAILURES = {('income', 'ks'), ('income', 'psi'), ('product', 'categories'), ('product', 'shares'), ('credit_score', 'missing')}  # exactly the injected drift


@lru_cache(1)
def portfolio(): return demo.generate(months=12, rows_per_month=1000)


def months(m): return demo.training_frame(portfolio(), m)


@pytest.fixture
def credit(ws):
    "A workspace with `credit` months 1-6 committed and its suite (key application_id, target defaulted) saved."
    data.commit(ws, 'credit', months(6), 'reference')
    suites.save_suite(ws, suites.infer_suite(ws, 'credit', keys=['application_id'], target='defaulted'))
    return ws


def failed(rep): return set(zip(rep.failures.column, rep.failures.check))


def result(rep, column, check): return rep.results.set_index(['column', 'check']).loc[(column, check)]


def commit_and_validate(ws, name, frame, **kw):
    return val.validate(ws, data.commit(ws, name, frame).ref, **kw)


def test_no_drift_passes(credit):
    rep = commit_and_validate(credit, 'credit', months(range(7, 10)))
    assert rep.passed and failed(rep) == set() and rep.suite == 'credit'
    assert result(rep, 'income', 'psi').observed < 0.05 and result(rep, 'income', 'ks').observed < 0.05
    assert result(rep, None, 'row_count').observed == 3000
    assert str(rep).startswith(f'{rep.dataset} against suite credit: passed, 0 of {len(rep.results)} checks failed')


def test_drift_fails_on_income_the_new_product_and_the_missing_credit_scores(credit):
    rep = commit_and_validate(credit, 'credit', months(range(10, 13)))
    assert not rep.passed and failed(rep) == DRIFT_FAILURES
    ks = result(rep, 'income', 'ks')
    assert 0.25 < ks.observed < 0.28 and ks.threshold == 0.1 and ks.message.startswith(f'income: ks {ks.observed:.4g} ≥ 0.1 and p ')
    assert 0.4 < result(rep, 'income', 'psi').observed < 0.43  # recorded net instead of gross: 30% lower
    cats = result(rep, 'product', 'categories')
    assert cats.message.startswith("product: unseen 'bnpl' (14.6% of rows) ≥ 1.0% and p ") and abs(cats.observed - 0.146) < 1e-6 and cats.threshold == 0.01
    assert result(rep, 'product', 'shares').message.startswith("product: share of unseen values 0 → 0.146, a change of 0.146 ≥ 0.05 and p ")
    lines = str(rep).splitlines()
    assert lines[0].endswith(f'FAILED, 5 of {len(rep.results)} checks failed')
    assert all(l.startswith('  FAIL') for l in lines[1:6]) and not any(l.startswith('  FAIL') for l in lines[6:])


def test_dropped_column_fails_naming_it(credit):
    rep = commit_and_validate(credit, 'credit_dropped', months(range(7, 10)).drop(columns='credit_score'), suite='credit')
    assert failed(rep) == {('credit_score', 'column_present')}
    assert '  FAIL  credit_score: column missing' in str(rep).splitlines()


def test_missing_values_fail_missing(credit):
    f = months(range(7, 10))
    f['debt_to_income'] = f.debt_to_income.where(np.random.default_rng(1).random(len(f)) >= 0.4)
    rep = commit_and_validate(credit, 'credit_nulls', f, suite='credit')
    # the reference had no nulls in debt_to_income: the missing share fails; only keys must have no null at all
    assert failed(rep) == {('debt_to_income', 'missing')} and ('debt_to_income', 'nullable') not in set(zip(rep.results.column, rep.results.check))
    m = result(rep, 'debt_to_income', 'missing')
    assert 0.38 < m.observed < 0.42 and m.threshold == 0.05 and m.message.startswith(f'debt_to_income: missing {m.observed:.4g} ≥ 0.05 (reference 0 + rise 0.05) and p ')


def test_duplicate_keys_fail_unique(credit):
    f = months(range(7, 10))
    rep = commit_and_validate(credit, 'credit_dups', pd.concat([f, f.iloc[:7]], ignore_index=True), suite='credit')
    assert failed(rep) == {('application_id', 'unique')}
    u = result(rep, 'application_id', 'unique')
    assert (u.observed, u.threshold, u.message) == (7, 0, 'application_id: 7 duplicate key rows')


def test_type_change_fails_and_extra_column_is_only_reported(credit):
    f = months(range(7, 10)).assign(age=lambda d: d.age.astype(float), note='x')
    rep = commit_and_validate(credit, 'credit_types', f, suite='credit')
    assert failed(rep) == {('age', 'type')} and result(rep, 'age', 'type').message == 'age: type double, expected int64'
    assert result(rep, 'note', 'extra_column').passed
    assert not ({('age', 'psi'), ('age', 'range')} & set(zip(rep.results.column, rep.results.check)))  # no value checks on a retyped column


def test_scoring_data_without_the_target_passes(credit):
    rep = commit_and_validate(credit, 'scoring', months(range(7, 10)).drop(columns='defaulted'), suite='credit')
    assert rep.passed and result(rep, 'defaulted', 'column_present').message == 'defaulted: absent, allowed for the target'


def test_results_are_stored_in_the_validations_table(credit):
    ok = commit_and_validate(credit, 'credit', months(range(7, 10)))
    bad = commit_and_validate(credit, 'credit', months(range(10, 13)))
    t = credit.sql('select * from validations').to_arrow_table()
    assert t.column_names == tables.VALIDATIONS.names and t.num_rows == len(ok.results) + len(bad.results)
    assert [str(f.type) for f in t.schema][7:10] == ['double', 'double', 'bool']
    rows = credit.sql('select "column", "check", observed, threshold, message from validations '
                      'where validation_id = $id and not passed order by "column", "check"', {'id': bad.validation_id}).fetchall()
    assert {(r[0], r[1]) for r in rows} == DRIFT_FAILURES
    income = next(r for r in rows if r[:2] == ('income', 'ks'))
    assert income[2] == pytest.approx(result(bad, 'income', 'ks').observed) and income[3] == 0.1 and income[4].startswith('income: ks')
    assert credit.sql('select distinct dataset, dataset_id, suite from validations where validation_id = $id',
                      {'id': ok.validation_id}).fetchall() == [(ok.dataset, ok.dataset_id, 'credit')]
    assert credit.sql("select count(*) from validations where \"check\" = 'type' and observed is not null").fetchall() == [(0,)]


def test_each_validation_is_one_audit_event(credit):
    bad = commit_and_validate(credit, 'credit', months(range(10, 13)), actor='ana')
    ev = audit.log(credit, action='data.validate')
    assert len(ev) == 1 and ev.subject[0] == bad.dataset and ev.actor[0] == 'ana'
    after = json.loads(ev.after[0])
    assert after['passed'] is False and after['validation_id'] == bad.validation_id and after['suite'] == 'credit'
    assert sorted(after['failed']) == sorted(f'{c}.{k}' for c, k in DRIFT_FAILURES) and len(after['suite_sha256']) == 64
    assert audit.verify(credit).ok


def test_edited_suite_changes_the_verdict(credit):
    data.commit(credit, 'credit', months(range(10, 13)))
    path = suites.suites_dir(credit)/'credit.json'
    d = json.loads(path.read_text())
    d['columns']['product']['categories']['allow_new'] = True
    d['columns']['income']['ks']['threshold'] = d['columns']['income']['psi']['threshold'] = 0.5
    del d['columns']['product']['shares']
    d['columns']['credit_score']['missing']['tolerance'] = 0.6  # the broker channel's missing scores, accepted
    path.write_text(json.dumps(d, indent=1))
    rep = val.validate(credit, 'credit')
    assert rep.passed and result(rep, 'product', 'categories').message == "product: unseen 'bnpl' (14.6% of rows), allowed"
    assert ('product', 'shares') not in set(zip(rep.results.column, rep.results.check))


def test_suite_file_is_readable_json_with_the_thresholds(credit):
    text = (suites.suites_dir(credit)/'credit.json').read_text()
    d = json.loads(text)
    assert d['keys'] == ['application_id'] and d['target'] == 'defaulted' and d['rows'] == {'reference': 6000, 'min': 600, 'max': 60000}
    income = d['columns']['income']
    assert income['psi']['threshold'] == 0.2 and income['ks']['threshold'] == 0.1 and income['missing']['tolerance'] == 0.05
    assert len(income['psi']['edges']) == 9 and abs(sum(income['psi']['shares']) - 1) < 1e-5
    assert d['columns']['product']['categories'] == {'values': ['personal_loan', 'credit_card', 'auto_loan'], 'allow_new': False, 'tolerance': 0.01}
    assert d['columns']['application_id'] == {'type': 'string', 'kind': 'text', 'required': True, 'count': 6000, 'nullable': False}
    assert d['false_alarm_rate'] == 0.001 and d['time'] is None and d['sensitive'] == [] and d['positive'] is None
    assert d['columns']['month']['kind'] == 'time' and 'categories' not in d['columns']['month']
    assert '  "keys": ["application_id"],' in text.splitlines()
    assert suites.load_suite(credit, 'credit') == suites.Suite(**d)


def test_thresholds_come_from_settings(tmp_path):
    ws = open_workspace(tmp_path/'ws', load_settings(env={'WORKBENCH_VALIDATION_MIN_KS': '0.5', 'WORKBENCH_VALIDATION_FALSE_ALARM_RATE': '0.01',
                                                          'WORKBENCH_VALIDATION_ALLOW_NEW_CATEGORIES': 'true'}))
    data.commit(ws, 'credit', months(6))
    s = suites.infer_suite(ws, 'credit')
    assert s.columns['income']['ks']['threshold'] == 0.5 and s.columns['product']['categories']['allow_new'] is True and s.false_alarm_rate == 0.01
    suites.save_suite(ws, s)
    rep = commit_and_validate(ws, 'credit', months(range(10, 13)))
    assert ('income', 'psi') in failed(rep) and not {('income', 'ks'), ('product', 'categories')} & failed(rep)


def test_bad_suite_files_are_named(credit):
    d = suites.suites_dir(credit)
    (d/'typo.json').write_text((d/'credit.json').read_text().replace('"threshold": 0.2', '"threshold": "0.2"', 1))
    (d/'broken.json').write_text('{"name": "broken",\n')
    with pytest.raises(WorkbenchError, match=r"typo\.json is not a valid suite: column 'age': psi\.threshold must be a number"):
        suites.load_suite(credit, 'typo')
    with pytest.raises(WorkbenchError, match=r"broken\.json is not valid JSON \(.*line 2"):
        suites.load_suite(credit, 'broken')
    with pytest.raises(WorkbenchError, match=r"no suite named 'nope' .*\(suites here: broken, credit, typo\)"):
        val.validate(credit, 'credit', suite='nope')
    assert audit.log(credit, action='data.validate').empty


def test_bad_keys_are_refused(credit):
    with pytest.raises(WorkbenchError, match=r"key region is not unique in credit@\w+ \(5994 duplicate rows\)"):
        suites.infer_suite(credit, 'credit', keys=['region'])
    with pytest.raises(WorkbenchError, match=r"has no column 'label'"):
        suites.infer_suite(credit, 'credit', target='label')
    with pytest.raises(WorkbenchError, match=r"column 'application_id' is both key and sensitive in the suite for credit@\w+; give each column one role"):
        suites.infer_suite(credit, 'credit', keys=['application_id'], sensitive=['application_id'])
    with pytest.raises(WorkbenchError, match=r"positive class 'yes' is not a class of target 'defaulted' \(classes: 0, 1\)"):
        suites.infer_suite(credit, 'credit', target='defaulted', positive='yes')


def test_without_a_suite_one_is_inferred_from_the_first_version(ws):
    first = data.commit(ws, 'credit', months(6))
    data.commit(ws, 'credit', months(range(10, 13)))
    rep = val.validate(ws, 'credit')
    assert rep.note.startswith(f"no suite 'credit' yet: inferred one from {first.ref}, the first version of credit")
    assert str(rep).splitlines()[0] == rep.note and not rep.passed
    assert suites.load_suite(ws, 'credit').reference == first.id and (ws.root/'suites'/'credit.json').is_file()
    assert 'note' in json.loads(audit.log(ws, action='data.validate').after[0])
    assert val.validate(ws, 'credit').note == ''  # the saved suite is used from now on


def test_suites_live_beside_the_projects_settings(tmp_path):
    (tmp_path/'proj').mkdir()
    (tmp_path/'proj'/'settings.ini').write_text(render_settings())
    s = load_settings(tmp_path/'proj'/'settings.ini', env={})
    inside, outside = open_workspace(tmp_path/'proj'/'workspace', s), open_workspace(tmp_path/'elsewhere', s)
    data.commit(inside, 'credit', months(6))
    assert suites.save_suite(inside, suites.infer_suite(inside, 'credit')) == tmp_path/'proj'/'suites'/'credit.json'
    assert suites.suites_dir(outside) == tmp_path/'elsewhere'/'suites'


# Roles, and checks calibrated to the sample: scikit-learn's breast cancer data (its own column names, with spaces)
# with a key, at 150 and 569 rows, and a synthetic table at 1,000,000 rows.

@lru_cache(1)
def cancer():
    from sklearn.datasets import load_breast_cancer
    return load_breast_cancer(as_frame=True).frame.rename_axis('patient id').reset_index()


def test_roles_are_recorded_once_and_read_by_other_stages(credit):
    assert suites.roles(credit, 'credit') == {'keys': ['application_id'], 'target': 'defaulted', 'positive': None, 'time': None, 'sensitive': [],
                                           'features': [c for c in months(1).columns if c not in ('application_id', 'defaulted')]}
    s = suites.infer_suite(credit, 'credit', ['application_id'], 'defaulted', 'roles', positive='1', time='applied_at', sensitive=['gender'])
    suites.save_suite(credit, s)
    r = suites.roles(credit, 'roles')
    assert (r['positive'], r['time'], r['sensitive']) == (1, 'applied_at', ['gender']) and not {'gender', 'applied_at', 'defaulted'} & set(r['features'])
    assert suites.roles(credit, 'nothing') is None
    assert set(s.columns['applied_at']) == {'type', 'kind', 'required', 'count', 'missing'}  # event time: type and nulls only
    assert set(s.columns['defaulted']) == {'type', 'kind', 'required', 'count', 'missing', 'categories'}  # target: no distribution


def test_a_new_class_of_the_target_fails(credit):
    f = months(range(7, 10))
    f.loc[f.index[:2], 'defaulted'] = 2
    rep = commit_and_validate(credit, 'credit_classes', f, suite='credit')
    assert failed(rep) == {('defaulted', 'categories')} and result(rep, 'defaulted', 'categories').message == "defaulted: unseen '2' (0.1% of rows) > 0"


def split(frame, seed, n_ref):
    o = np.random.default_rng(seed).permutation(len(frame))
    return frame.iloc[o[:n_ref]], frame.iloc[o[n_ref:]]


def test_random_splits_of_breast_cancer_pass_over_15_seeds(ws):
    "The issue's case: 400 rows as the reference, the other 169 as the new batch; every seed passes, keys included."
    worst = {}
    for seed in range(15):
        ref, new = split(cancer(), seed, 400)
        data.commit(ws, f'bc{seed}', ref)
        suite = suites.infer_suite(ws, f'bc{seed}', keys=['patient id'], target='target', positive=1)
        r = val.run_suite(ws, data.commit(ws, f'bc{seed}', new).ref, suite)
        assert r.passed.all(), (seed, r[~r.passed].message.tolist())
        worst[seed] = r[r.check == 'ks'].observed.max()
    assert max(worst.values()) > 0.1  # the old fixed threshold (ks 0.1) would have failed some of these splits


def test_random_split_and_shift_at_150_rows(ws):
    "150 rows, 100 as the reference: a random split passes over 6 seeds; mean radius shifted by 1.5 standard deviations fails, alone."
    shift = 1.5*cancer()['mean radius'].std()
    for seed in range(6):
        ref, new = split(cancer().iloc[np.random.default_rng(100 + seed).permutation(len(cancer()))[:150]], seed, 100)
        data.commit(ws, f'small{seed}', ref)
        suite = suites.infer_suite(ws, f'small{seed}', keys=['patient id'], target='target')
        r = val.run_suite(ws, data.commit(ws, f'small{seed}', new).ref, suite)
        assert r.passed.all(), (seed, r[~r.passed].message.tolist())
        s = val.run_suite(ws, data.commit(ws, f'small{seed}', new.assign(**{'mean radius': new['mean radius'] + shift})).ref, suite)
        assert set(s[~s.passed].column) == {'mean radius'}, (seed, s[~s.passed].message.tolist())


@pytest.fixture(scope='module')
def million(tmp_path_factory):
    "A 1,000,000-row table split in two random halves: the first half committed as the reference, with its suite."
    ws = open_workspace(tmp_path_factory.mktemp('million')/'ws', load_settings(env={}))
    n, rng = 1_000_000, np.random.default_rng(7)
    f = pd.DataFrame({'id': np.arange(n), 'x': rng.normal(size=n), 'amount owed': rng.lognormal(3, 1, n), 'region': rng.choice(['north', 'south', 'east'], n, p=[.5, .3, .2]),
                      'at': pd.Timestamp('2026-01-01') + pd.to_timedelta(rng.integers(0, 86400*365, n), unit='s'), 'label': rng.choice(['no', 'yes'], n, p=[.8, .2])})
    f.loc[rng.random(n) < .02, 'x'] = np.nan
    ref, new = f.iloc[:n//2], f.iloc[n//2:]
    data.commit(ws, 'big', ref)
    suites.save_suite(ws, suites.infer_suite(ws, 'big', keys=['id'], target='label', positive='yes', time='at'))
    return ws, new


def check(ws, frame):
    return val.validate(ws, data.commit(ws, 'big', frame).ref)


def test_at_a_million_rows_a_random_half_and_a_tiny_shift_pass(million):
    ws, new = million
    assert check(ws, new).passed  # new ids, later times: keys and event time are not checked for range
    tiny = check(ws, new.assign(x=new.x + 0.02, **{'amount owed': new['amount owed']*1.001}))
    ks = result(tiny, 'x', 'ks')
    assert tiny.passed and ks.message.startswith('x: ks 0.00') and ks.observed < 0.1  # significant at this size, yet below the floor


def test_at_a_million_rows_a_genuine_shift_fails_naming_the_column(million):
    ws, new = million
    half = check(ws, new.assign(x=new.x + 0.5))
    assert {c for c, _ in failed(half)} == {'x'} and result(half, 'x', 'ks').message.startswith('x: ks 0.19')
    rng = np.random.default_rng(1)
    moved = new.assign(region=np.where((new.region == 'south') & (rng.random(len(new)) < 1/3), 'north', new.region))  # south 30% -> 20%
    rep = check(ws, moved)
    assert failed(rep) == {('region', 'shares')} and result(rep, 'region', 'shares').message.startswith("region: share of 'north' 0.5 → 0.6")


def csv(tmp_path, name, frame):
    frame.to_csv(tmp_path/name, index=False)
    return tmp_path/name


def test_breast_cancer_through_the_cli(tmp_path, wb):
    "Column names with spaces, a key named 'patient id': fresh keys pass; duplicate and null keys and a shifted column fail, each named."
    ref, new = split(cancer(), 3, 400)
    wb('data', 'commit', 'cancer', csv(tmp_path, 'ref.csv', ref), '-m', 'reference')
    out = wb('data', 'suite', 'cancer', '--keys', 'patient id', '--target', 'target', '--positive', '1').stdout
    assert 'roles: keys patient id; target target (positive class 1); time none; sensitive none; 30 features' in out
    fresh = new.assign(**{'patient id': new['patient id'] + 10_000})
    wb('data', 'commit', 'cancer', csv(tmp_path, 'fresh.csv', fresh), '-m', 'fresh keys')
    assert 'passed, 0 of' in wb('data', 'validate', 'cancer').stdout.splitlines()[0]
    bad = pd.concat([fresh, fresh.head(3)]).assign(**{'mean radius': lambda f: f['mean radius'] + cancer()['mean radius'].std()})
    bad['patient id'] = bad['patient id'].where(~np.isin(np.arange(len(bad)), [10, 11])).astype('Int64')  # two null keys, apart from the 3 duplicated
    wb('data', 'commit', 'cancer', csv(tmp_path, 'bad.csv', bad), '-m', 'duplicates, nulls, a shift')
    r = wb('data', 'validate', 'cancer', check=False)
    fails = [l.strip() for l in r.stdout.splitlines() if l.startswith('  FAIL')]
    assert r.returncode == 1 and {'FAIL  patient id: 2 nulls > 0 in a column that must have none', 'FAIL  patient id: 3 duplicate key rows'} <= set(fails), r.stdout
    assert {l.split(':')[0] for l in fails} == {'FAIL  patient id', 'FAIL  mean radius'} and any(' ks ' in l and ' ≥ 0.1 and p ' in l for l in fails)
    r = wb('data', 'suite', 'cancer', '--keys', 'patient id', '--time', 'patient id', '--name', 'other', check=False)
    assert r.returncode == 1 and r.stderr.strip().splitlines() == [r.stderr.strip()] and "column 'patient id' is both key and time" in r.stderr
