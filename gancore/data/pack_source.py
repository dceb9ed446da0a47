"""``data.name = "pack"``: training from a pack, with memory that does not grow with the dataset."""

from __future__ import annotations

from pydantic import Field

from gancore.data import DataSource, TensorData
from gancore.data.pack import open_pack
from gancore.errors import ConfigError
from gancore.interfaces import Settings
from gancore.lazy import lazy_module

torch = lazy_module("torch")


class PackSettings(Settings):
    path: str = Field(..., description="A pack written by `gancore data pack`.")
    resident_mb: float = Field(
        512.0, ge=0.0, description="Packs up to this size (MB of uint8 images) are copied onto the training "
        "device (on the CPU: into memory); larger ones stay memory-mapped and each batch is gathered from the "
        "file in a background thread while the step runs.")
    flip: bool | None = Field(None, description="Random horizontal flips; null: as the packed source had them.")
    crop_size: int | None = Field(
        None, ge=0, le=1024, description="Random squares of this side cut from each stored image per batch (drawn from "
        "the sampler's generator); null: as packed (a source packed with crop = 'random' sets it); 0: whole images.")
    image_size: int | None = Field(
        None, ge=1, le=1024, description="The side the networks see, as packed (read from the pack: the stored side, "
        "or crop_size); a different value is an error (a pack holds one size: pack the source again at another).")


class Pack(DataSource):
    """A dataset packed by ``gancore data pack``: uint8 images read through a memory map."""

    name = "pack"
    Config = PackSettings

    def load(self) -> TensorData:
        pack = open_pack(self.config.path)
        arrays = pack.arrays
        stored = int(arrays["images"].shape[-1])
        crop = self.config.crop_size
        if crop is None:
            packed = pack.metadata.get("crop_size", "0") or "0"
            if not packed.isdigit():
                raise ConfigError(f"{pack.path}: pack metadata crop_size {packed!r} is not a whole number")
            crop = int(packed)
        if crop > stored:
            raise ConfigError(f"data.crop_size: {crop} is larger than the {stored}x{stored} images of {pack.path}")
        side = crop or stored
        if self.config.image_size is not None and self.config.image_size != side:
            held = f"{stored}x{stored} images" + (f" cut to {crop}x{crop}" if crop else "")
            raise ConfigError(f"data.image_size: {self.config.image_size}, but {pack.path} holds {held} "
                              "(pack the source again at that size, or leave data.image_size unset)")

        def tensor(name: str) -> torch.Tensor | None:
            return torch.from_numpy(arrays[name]) if name in arrays else None

        flip = self.config.flip if self.config.flip is not None else pack.metadata.get("flip") == "True"
        return TensorData(x=tensor("images"), y=tensor("labels"), num_classes=pack.num_classes,
                          x_b=tensor("images_b"), y_b=tensor("labels_b"), flip=flip,
                          paired=pack.metadata.get("paired") == "True", crop_size=crop if 0 < crop < stored else None,
                          resident_bytes=int(self.config.resident_mb * 2**20))
