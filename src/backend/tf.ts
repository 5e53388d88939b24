/**
 * The one place TensorFlow.js is imported. Everything else imports `tf` from here, so the backend
 * chosen by `selectBackend` is the one every layer and model uses.
 */
import * as tf from '@tensorflow/tfjs';

tf.enableProdMode();

export { tf };
export type Tensor = tf.Tensor;
export type Variable = tf.Variable;
