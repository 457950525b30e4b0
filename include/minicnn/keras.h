// minicnn/keras.h — a Sequential model from the JSON that Keras's model.to_json() writes, in the
// Keras 2 (tf.keras) and Keras 3 forms.
//
// Layers: InputLayer, Conv2D, MaxPooling2D, AveragePooling2D, Flatten, Dense, Activation, Dropout,
// with filters, kernel_size, strides, padding ("valid" / "same"), activation, units, pool_size
// (strides null = pool_size), rate (Dropout: in [0, 1); its seed field is ignored, the units are
// drawn from the run's seed, minicnn/detail/dropout.h). The input shape comes from batch_input_shape (Keras 2, on the first layer or an
// InputLayer) or batch_shape (Keras 3's InputLayer).
//
// Keras's "same" pads max((ceil(in/s) - 1) * s + k - in, 0) in all, the odd one at the bottom/right;
// minicnn pads symmetrically only, so a Keras "same" becomes the explicit symmetric padding total/2
// where the total is even (an odd kernel at stride 1 always is), and is refused where it would be
// asymmetric. A "same" pooling is taken where it pads nothing (the same as "valid"), refused
// otherwise.
//
// What minicnn cannot honour is refused before anything trains, with an ArgumentError of one line
// that names the layer (its name and class) and the field: an unknown layer class, data_format
// channels_first, dilation_rate != 1, groups != 1, use_bias false, a regularizer or constraint that
// is not null, a bias_initializer other than zeros, a kernel_initializer other than those below, a
// dtype other than float32, trainable false, an unknown activation, a Dropout noise_shape that is
// not null, an input shape that does not match the data.
// Initialisers: kernel_initializer HeNormal (minicnn's He normal, truncated at 2 stddev, whose
// stddev is sqrt(2 / fan_in) without Keras's truncation correction), GlorotUniform (Keras's default,
// also when the field is absent) or Zeros, drawn from options.seed (a seed in the file is ignored);
// any other is refused. Biases are zero (bias_initializer must say Zeros).
#pragma once

#include <cstdint>
#include <string>

#include "minicnn/model.h"

namespace minicnn {

struct KerasOptions {
    std::uint64_t seed = 0;  // Sequential::init_params(seed)
    Shape input_shape;       // the data's (h, w, c): the file's must match; empty: no check
    std::string source = "Keras model";  // names the file at the start of each error
};

// The model (architecture, initialised weights; its name is the file's model name).
Sequential model_from_keras_json(const std::string& text, const KerasOptions& options = {});

}  // namespace minicnn
