import json
import subprocess
import sys

SCRIPT = """
import json, sys
import numpy as np
from cnnport.runtime import Engine
engine = Engine(sys.argv[1], providers="cpu")
prediction = engine.predict(np.zeros((48, 64, 3), np.uint8))
heavy = [m for m in ("tensorflow", "keras", "tf2onnx", "onnx") if m in sys.modules]
print(json.dumps({"label": prediction.label, "heavy": heavy}))
"""


def test_runtime_never_imports_tensorflow(tiny_model):
    # A fresh interpreter: the test session itself may have TensorFlow loaded.
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tiny_model.path)], capture_output=True, text=True, check=True
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["label"] in tiny_model.card.labels
    assert report["heavy"] == []


def test_cli_help_and_predict_never_import_tensorflow(tiny_model, tmp_path):
    import cv2
    import numpy as np

    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((8, 8, 3), np.uint8))
    script = (
        "import sys; from cnnport.apps.cli import main; "
        f"main(['predict', {str(tiny_model.path)!r}, {str(tmp_path)!r}, '--provider', 'cpu']); "
        "print('HEAVY', [m for m in ('tensorflow', 'keras', 'tf2onnx') if m in sys.modules])"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert "HEAVY []" in result.stdout
