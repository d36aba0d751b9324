import { describe, it } from "@effect/vitest"
import { DeciderSpec } from "@eventfold/core/testing"
import {
  CreateProduct,
  InvalidPrice,
  PriceUpdated,
  ProductAlreadyExists,
  ProductCreated,
  ProductDecider,
  ProductNotFound,
  UpdatePrice
} from "../src/domain/Product.js"

const spec = DeciderSpec.for(ProductDecider)

const created = new ProductCreated({ name: "Widget", price: 10 })
const updated = new PriceUpdated({ price: 12.5, previousPrice: 10 })

describe("Product", () => {
  describe("CreateProduct", () => {
    it.effect("creates a product with its name and price", () =>
      spec.given([]).when(CreateProduct.make({ name: "Widget", price: 10 })).then([created]))

    it.effect("leaves the product active at its price", () =>
      spec.given([]).when(CreateProduct.make({ name: "Widget", price: 10 })).thenState({
        status: "active",
        name: "Widget",
        price: 10
      }))

    it.effect("refuses a product that already exists", () =>
      spec.given([created]).when(CreateProduct.make({ name: "Gadget", price: 3 })).thenFails(
        new ProductAlreadyExists({ name: "Widget" })
      ))

    for (const price of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      it.effect(`refuses the price ${price}`, () =>
        spec.given([]).when(CreateProduct.make({ name: "Widget", price })).thenFails((error) =>
          error._tag === "InvalidPrice" && Object.is(error.price, price)
        ))
    }
  })

  describe("UpdatePrice", () => {
    it.effect("records the new price and the previous one", () =>
      spec.given([created]).when(UpdatePrice.make({ price: 12.5 })).then([updated]))

    it.effect("folds every change into the state", () =>
      spec.given([created, updated]).when(UpdatePrice.make({ price: 8 })).thenState({
        status: "active",
        name: "Widget",
        price: 8
      }))

    it.effect("decides nothing when the price does not change", () =>
      spec.given([created]).when(UpdatePrice.make({ price: 10 })).thenNothingHappens())

    it.effect("decides nothing when the new price equals the current, updated one", () =>
      spec.given([created, updated]).when(UpdatePrice.make({ price: 12.5 })).thenNothingHappens())

    it.effect("refuses a product that was never created", () =>
      spec.given([]).when(UpdatePrice.make({ price: 12 })).thenFails(new ProductNotFound()))

    it.effect("refuses a price that is not positive", () =>
      spec.given([created]).when(UpdatePrice.make({ price: 0 })).thenFails(new InvalidPrice({ price: 0 })))

    it.effect("checks existence before the price", () =>
      spec.given([]).when(UpdatePrice.make({ price: -5 })).thenFails(new ProductNotFound()))
  })
})
