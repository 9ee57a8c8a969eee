"The ONNX file is the deployable artifact: scoring it needs neither scikit-learn, skl2onnx nor a pickle."
import json, subprocess, sys
import numpy as np, pandas as pd
import pytest


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
    "A gradient-boosting credit pipeline exported to ONNX, its held-out rows and its own probabilities."
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from workbench import demo, onnx
    from workbench.config import load_settings
    frame = demo.training_frame(demo.generate(months=2, rows_per_month=800), 2)
    num, cat = ['age', 'income', 'credit_score', 'debt_to_income', 'delinquencies_2y'], ['product', 'region']
    pre = ColumnTransformer([('num', make_pipeline(SimpleImputer(strategy='median'), StandardScaler()), num),
                             ('cat', OneHotEncoder(handle_unknown='ignore'), cat)])
    pipe = make_pipeline(pre, GradientBoostingClassifier(n_estimators=40, random_state=0)).fit(frame[:1200], frame.defaulted[:1200])
    test = frame[1200:]
    e = onnx.export(pipe, test, settings=load_settings(env={}))
    d = tmp_path_factory.mktemp('onnx')
    (d/'model.onnx').write_bytes(e.onnx)
    test[num + cat].to_parquet(d/'rows.parquet')
    np.save(d/'sklearn.npy', pipe.predict_proba(test))
    return d, e


def test_scoring_imports_no_sklearn(exported):
    "A fresh process scores the file with `OnnxModel` and never imports scikit-learn or skl2onnx."
    d, e = exported
    code = f"""
import sys, numpy as np, pandas as pd
from workbench.deployed import OnnxModel
m = OnnxModel(open({str(d/'model.onnx')!r}, 'rb').read())
p = m.predict_proba(pd.read_parquet({str(d/'rows.parquet')!r}))
assert np.abs(p - np.load({str(d/'sklearn.npy')!r})).max() < 1e-6, 'parity'
assert not {{'sklearn', 'skl2onnx'}} & set(sys.modules), sorted({{'sklearn', 'skl2onnx'}} & set(sys.modules))
print(m.classes.tolist(), m.metadata['estimator'])
"""
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ['[0,', '1]', 'GradientBoostingClassifier']


def test_plain_onnxruntime_reads_the_file(exported):
    "Without workbench: inputs named after columns, outputs label and probabilities, classes and parity in the metadata."
    import onnxruntime as ort
    d, e = exported
    s = ort.InferenceSession(str(d/'model.onnx'), providers=['CPUExecutionProvider'])
    meta = s.get_modelmeta()
    assert meta.producer_name == 'mlops-workbench' and json.loads(meta.custom_metadata_map['classes']) == [0, 1]
    assert json.loads(meta.custom_metadata_map['parity'])['passed'] is True
    assert [i.name for i in s.get_inputs()] == [c['name'] for c in e.signature]
    rows = pd.read_parquet(d/'rows.parquet').head(2)
    feeds = {c['name']: (rows[[c['name']]].astype(float).to_numpy() if c['type'] == 'double' else rows[[c['name']]].to_numpy(dtype=object))
             for c in e.signature}
    label, proba = s.run(['label', 'probabilities'], feeds)
    assert label.shape == (2,) and proba.shape == (2, 2) and np.allclose(proba.sum(1), 1)
