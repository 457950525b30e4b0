"""Writes the Keras 3 model files of tests/data/keras/ that Keras itself produces (model.to_json()).

Run it with Keras 3 from PyPI, which needs no TensorFlow (the numpy backend builds models), in a
throwaway virtual environment outside the repository; the tests never need Keras:

    /usr/bin/python3 -m venv /tmp/kerasvenv
    /tmp/kerasvenv/bin/pip install keras numpy
    KERAS_BACKEND=numpy /tmp/kerasvenv/bin/python tests/data/keras/make_keras_files.py

It writes, next to itself:
    lenet5_he_keras3.json      the exercise's LeNet-5 (28x28x1), he_normal initialisers everywhere
    cifar_dropout_keras3.json  a CIFAR-shaped model (32x32x3): two 3x3 convolutions with pooling,
                               Dropout(0.25), two dense layers with Dropout(0.5) between them
tests/test_keras.cpp and tests/test_cli.cpp read them. to_json() does not record the Keras version,
so the model names below carry it.
"""
import json
import os

import keras
from keras import layers

HERE = os.path.dirname(os.path.abspath(__file__))


def write(model, name):
    text = model.to_json()
    json.loads(text)  # valid JSON
    with open(os.path.join(HERE, name), "w") as f:
        f.write(text)
        f.write("\n")
    print("wrote", name, "with keras", keras.__version__, "backend", keras.backend.backend())


def lenet5():
    he = "he_normal"
    return keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1)),
            layers.Conv2D(6, 5, padding="same", activation="relu", kernel_initializer=he),
            layers.MaxPooling2D(2),
            layers.Conv2D(16, 5, padding="valid", activation="relu", kernel_initializer=he),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dense(120, activation="relu", kernel_initializer=he),
            layers.Dense(84, activation="relu", kernel_initializer=he),
            layers.Dense(10, activation="softmax", kernel_initializer=he),
        ],
        name="lenet5_he_keras_" + keras.__version__.replace(".", "_"),
    )


def cifar_dropout():
    return keras.Sequential(
        [
            keras.Input(shape=(32, 32, 3)),
            layers.Conv2D(8, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(16, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.Dropout(0.25),
            layers.Flatten(),
            layers.Dense(32, activation="relu"),
            layers.Dropout(0.5, seed=1234),  # a seed in the file: minicnn uses the run's instead
            layers.Dense(10, activation="softmax"),
        ],
        name="cifar_dropout_keras_" + keras.__version__.replace(".", "_"),
    )


if __name__ == "__main__":
    write(lenet5(), "lenet5_he_keras3.json")
    keras.backend.clear_session()  # layer names start again at conv2d, dense, ...
    write(cifar_dropout(), "cifar_dropout_keras3.json")
