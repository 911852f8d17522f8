from facegan_tf.training.ipcgan import IPCGANTrainer
from tests.ipcgan import test_training as t

original = IPCGANTrainer._generator_gradients


def scaled(self, batch):
    gradients, values = original(self, batch)
    return [g * self.replicas for g in gradients], values


def test_wrong(tiny, tiny_data, tmp_path, monkeypatch):
    monkeypatch.setattr(IPCGANTrainer, "_generator_gradients", scaled)
    t.test_two_replicas_with_synchronized_bn_match_one_device(tiny, tiny_data, tmp_path)
