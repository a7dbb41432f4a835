# sMNIST splits as the built-in loader's model inputs (pixels / 255 in float32) in .ts files
from hadamrnn.data import load_data
from hadamrnn.data.timeseries import write_series
from hadamrnn.preprocess import InputTransform
splits = load_data("smnist", "../shared/data")
transform = InputTransform.from_dict(splits.info.transform)
for name, split in splits.items():
    x = transform.features(split.x.numpy())
    print(name, write_series(f"/tmp/mnistts/scaled-{name}.ts", list(x), [str(v) for v in split.y.tolist()], "smnist"))
