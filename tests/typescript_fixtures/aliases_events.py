"""Fields named as the channel sends them: it dumps each event by alias."""

from typing import Annotated, ClassVar

import pydantic
from fastapi_pg_sse import ChannelEvent
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, alias_generators, computed_field
from pydantic.alias_generators import to_camel as camel


class Dimensions(BaseModel):
    """A nested model with its own generator."""

    model_config = {"alias_generator": alias_generators.to_snake}

    widthCm: float
    heightCm: float = Field(alias="height")


class Labelled(ChannelEvent):
    """Fields with aliases of their own, and no generator."""

    sku: str = Field(alias="SKU")
    stock_level: Annotated[int, Field(serialization_alias="stock-level")]
    old_name: str = Field(validation_alias=AliasChoices("old", "older"))
    both: str = Field(alias="validated", serialization_alias="sent")
    unset: str = Field(alias=None)

    @computed_field(alias="total count")
    @property
    def count(self) -> int:
        return 1


class StockLabelled(Labelled):
    event_type: ClassVar[str] = "stock_labelled"


class StockRow(ChannelEvent):
    """A row whose fields are camelCase on the wire."""

    model_config = ConfigDict(alias_generator=camel)

    user_id: str
    stock_level: int
    kept: int = Field(alias="kept_as_is")
    dimensions: Dimensions

    @computed_field
    @property
    def in_stock(self) -> bool:
        return self.stock_level > 0


class StockChanged(StockRow):
    """It inherits the generator."""

    event_type: ClassVar[str] = "stock_changed"

    changed_by: str


class StockCounted(StockRow, alias_generator=pydantic.alias_generators.to_pascal):
    """Its own generator names the fields it inherits too."""

    event_type: ClassVar[str] = "stock_counted"


class StockPlain(StockRow):
    """No generator: the field names as they are."""

    model_config = ConfigDict(alias_generator=None)

    event_type: ClassVar[str] = "stock_plain"


StockEvent = StockLabelled | StockChanged | StockCounted | StockPlain
