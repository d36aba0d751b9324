/**
 * The product of the seed tutorial as a pure decider: it is created with a name and a price, and its price can
 * change. Nothing here touches storage; `ProductAggregate` binds it to the `Product` stream type.
 */
import { Aggregate, Decider } from "@eventfold/core"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"

// Commands

/** Create a product. The price is checked by the decider, which refuses anything but a positive amount. */
export const CreateProduct = Schema.TaggedStruct("CreateProduct", {
  name: Schema.NonEmptyString,
  price: Schema.Number
})

/** Create a product. */
export interface CreateProduct extends Schema.Schema.Type<typeof CreateProduct> {}

/** Change the price of an existing product. */
export const UpdatePrice = Schema.TaggedStruct("UpdatePrice", {
  price: Schema.Number
})

/** Change the price of an existing product. */
export interface UpdatePrice extends Schema.Schema.Type<typeof UpdatePrice> {}

/** Every command a product accepts, as a Schema so an API boundary can decode them. */
export const ProductCommand = Schema.Union(CreateProduct, UpdatePrice)

/** Every command a product accepts. */
export type ProductCommand = typeof ProductCommand.Type

// Events

/** The product was created. */
export class ProductCreated extends Schema.TaggedClass<ProductCreated>()("ProductCreated", {
  name: Schema.String,
  price: Schema.Number
}) {}

/** The product's price changed; the previous price is kept for projections that show the change. */
export class PriceUpdated extends Schema.TaggedClass<PriceUpdated>()("PriceUpdated", {
  price: Schema.Number,
  previousPrice: Schema.Number
}) {}

/** The events of a product; `_tag` is the stored event type. */
export const ProductEvent = Schema.Union(ProductCreated, PriceUpdated)

/** The events of a product. */
export type ProductEvent = typeof ProductEvent.Type

// State

/** The state of a product, as a Schema so it can be snapshotted. */
export const ProductState = Schema.Union(
  Schema.Struct({ status: Schema.Literal("none") }),
  Schema.Struct({ status: Schema.Literal("active"), name: Schema.String, price: Schema.Number })
)

/** The state of a product. */
export type ProductState = typeof ProductState.Type

// Errors

/** `CreateProduct` on a product that already exists. */
export class ProductAlreadyExists extends Schema.TaggedError<ProductAlreadyExists>()("ProductAlreadyExists", {
  name: Schema.String
}) {
  override get message(): string {
    return `Product ${JSON.stringify(this.name)} already exists`
  }
}

/** `UpdatePrice` on a product that was never created. */
export class ProductNotFound extends Schema.TaggedError<ProductNotFound>()("ProductNotFound", {}) {
  override get message(): string {
    return "The product does not exist"
  }
}

/** A price that is not a positive, finite amount. */
export class InvalidPrice extends Schema.TaggedError<InvalidPrice>()("InvalidPrice", {
  price: Schema.Number
}) {
  override get message(): string {
    return `A price must be positive, got ${this.price}`
  }
}

/** Every way a product command can be refused. */
export type ProductError = ProductAlreadyExists | ProductNotFound | InvalidPrice

// Decider

const isValidPrice = (price: number): boolean => Number.isFinite(price) && price > 0

/** The product's rules: `decide` checks a command against the state, `evolve` applies an event. */
export const ProductDecider = Decider.make<ProductState, ProductCommand, ProductEvent, ProductError>({
  initialState: { status: "none" },
  decide: (command, state) => {
    switch (command._tag) {
      case "CreateProduct": {
        if (state.status !== "none") return Effect.fail(new ProductAlreadyExists({ name: state.name }))
        if (!isValidPrice(command.price)) return Effect.fail(new InvalidPrice({ price: command.price }))
        return Effect.succeed([new ProductCreated({ name: command.name, price: command.price })])
      }
      case "UpdatePrice": {
        if (state.status === "none") return Effect.fail(new ProductNotFound())
        if (!isValidPrice(command.price)) return Effect.fail(new InvalidPrice({ price: command.price }))
        // Setting the price it already has changes nothing, so it records nothing.
        if (command.price === state.price) return Effect.succeed([])
        return Effect.succeed([new PriceUpdated({ price: command.price, previousPrice: state.price })])
      }
    }
  },
  evolve: (state, event) => {
    switch (event._tag) {
      case "ProductCreated":
        return { status: "active", name: event.name, price: event.price }
      case "PriceUpdated":
        return state.status === "active" ? { ...state, price: event.price } : state
    }
  }
})

/** Products bound to the `Product` stream type, with their event and state Schemas. */
export const ProductAggregate = Aggregate.make({
  name: "Product",
  decider: ProductDecider,
  events: ProductEvent,
  state: ProductState
})
