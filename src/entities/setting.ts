import { BeforeInsert, BeforeUpdate, Column, Entity, PrimaryColumn, UpdateDateColumn } from 'typeorm';

/** Key/value store for runtime settings (default system prompt, inactivity threshold, default model). */
@Entity({ name: 'settings' })
export class Setting {
  @PrimaryColumn({ type: 'varchar', length: 100 })
  key!: string;

  /**
   * Any JSON value; JSON `null` is stored as SQL NULL. Typed `unknown` (narrow it when reading):
   * a recursive JSON type makes TypeORM's FindOptionsWhere<Setting> instantiate too deeply.
   */
  @Column({ type: 'simple-json', nullable: true })
  value!: unknown;

  @UpdateDateColumn({ type: Date, name: 'updated_at' })
  updatedAt!: Date;

  @BeforeInsert()
  protected assignDefaults(): void {
    this.updatedAt ??= new Date();
  }

  @BeforeUpdate()
  protected touch(): void {
    this.updatedAt = new Date();
  }
}
